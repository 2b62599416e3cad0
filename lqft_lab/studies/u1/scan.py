"""Notebook 02's τ_int(Q) scan over β: which flow runs where, the runs, table and records."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from ... import checks, exact
from ...flows import build_u1_flow
from .. import _checks
from .chains import U1Run, run_u1_algorithm
from .training import shipped_u1_flow, train_u1_flow

__all__ = ["U1Sizes", "U1Scan", "run_u1_scan", "scan_table", "scan_records", "exact_table"]


@dataclass(frozen=True)
class U1Sizes:
    """Statistics and training budgets of notebook 02; the defaults are full mode's.

    Chains are ``(chains, production steps)``; one step is one flow proposal per chain, one
    unit HMC trajectory, or one heatbath + overrelaxation sweep.

    Attributes:
        train_steps, train_lr: fine-tuning of the pretrained flow (constant learning rate).
        scratch_steps, scratch_lr: training from scratch (``use_pretrained = False``),
            cosine schedule.
        train_batch: batch of both, and of the scan's training. Full mode's 256 costs little
            more than 64 on a GPU, where a training step is one CUDA-graph replay, and gives
            less noisy gradients.
        flow: flow-MH chains at the flow study's ``(L, β)`` and in the β scan.
        ess_samples: fresh samples for the ESS, acceptance and charge histogram.
        logz_samples: fresh samples for the importance-sampling ``log Z``.
        study_L: lattice of the β scan.
        hmc, heatbath: HMC and heatbath chains of the β scan.
        study_train_steps, study_lr: training of a scan flow on ``study_L`` by the forward KL
            on flow-MH + heatbath chains (:func:`train_u1_flow` with ``forward_kl=True``,
            cosine schedule), for each β whose flow was not trained on ``study_L`` already
            (:func:`run_u1_scan`); 0: no training, flow-MH only where a flow exists.
        prefetch: flow chains draw this many steps' proposals per pass of the flow (the
            same chain law; it keeps a GPU busy).
        flow_heatbath_every_beta: run flow + heatbath at every β of the scan, not only at
            the largest.
    """

    train_steps: int = 1000
    train_lr: float = 1e-4
    scratch_steps: int = 20_000
    scratch_lr: float = 3e-3
    train_batch: int = 256
    flow: tuple[int, int] = (256, 2000)
    ess_samples: int = 65_536
    logz_samples: int = 65_536
    study_L: int = 16
    hmc: tuple[int, int] = (64, 20_000)
    heatbath: tuple[int, int] = (64, 10_000)
    study_train_steps: int = 3000
    study_lr: float = 3e-4
    prefetch: int = 4
    flow_heatbath_every_beta: bool = True

    def __post_init__(self):
        """Refuse sizes no run could use (each ``TypeError``/``ValueError`` names the field)."""
        for name in ("train_steps", "scratch_steps", "study_train_steps"):
            checks.integer(name, getattr(self, name), low=0)
        for name in ("train_batch", "ess_samples", "logz_samples"):
            checks.integer(name, getattr(self, name), low=2)
        for name in ("train_lr", "scratch_lr", "study_lr"):
            checks.positive(name, getattr(self, name))
        for name in ("flow", "hmc", "heatbath"):
            _checks.chains_and_steps(name, getattr(self, name))
        checks.integer("study_L", self.study_L, low=4)
        if self.study_L % 4:
            raise ValueError(
                f"study_L must be a multiple of 4 (the flows' stripe masks), got {self.study_L}"
            )
        checks.integer("prefetch", self.prefetch, low=1)
        _checks.flag("flow_heatbath_every_beta", self.flow_heatbath_every_beta)

    @classmethod
    def for_mode(cls, mode: str) -> U1Sizes:
        """``"full"`` (the defaults: a GPU job, or an hour on two CPU cores) or ``"fast"``
        (a few CPU minutes: the scan on ``L = 8`` with the shipped flows as they are).

        Raises:
            ValueError: for any other mode.
        """
        if mode == "full":
            return cls()
        if mode == "fast":
            return replace(
                cls(),
                train_steps=100,
                scratch_steps=2000,
                train_batch=64,
                flow=(64, 400),
                ess_samples=8192,
                logz_samples=16_384,
                study_L=8,
                hmc=(16, 2000),
                heatbath=(16, 800),
                study_train_steps=0,
                prefetch=1,
                flow_heatbath_every_beta=False,
            )
        raise ValueError(f"mode must be 'fast' or 'full', got {mode!r}")


@dataclass(frozen=True)
class U1Scan:
    """The τ_int(Q) scan over β of notebook 02: every algorithm's chains on one lattice.

    Attributes:
        L: the scan's lattice extent.
        runs: ``(algorithm, β) → U1Run`` (:func:`run_u1_algorithm`).
        flows: ``β → flow`` that ran flow-MH at that β.
        notes: one sentence per flow: where it came from, how it was trained here.
    """

    L: int
    runs: dict = field(repr=False)
    flows: dict = field(repr=False)
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        checks.integer("L", self.L, low=1)
        _checks.mapping("runs", self.runs, U1Run, empty=True)
        _checks.mapping("flows", self.flows, empty=True)

    @property
    def flow_betas(self) -> list[float]:
        """The couplings at which flow-MH ran, ascending."""
        return sorted(self.flows)

    def pulls(self) -> dict:
        """``(algorithm, β) → (pull of ⟨cos θ_P⟩, pull of χ_t)`` against the exact values.

        A pull is ``(estimate - exact)/σ`` with the Γ-method error. A charge that never
        changed in any chain has no error estimate: its ``χ_t`` pull is NaN.
        """
        out = {}
        for (alg, b), r in self.runs.items():
            plaq_exact = exact.u1_plaquette(b, self.L)
            chi_exact = exact.u1_topological_susceptibility(b, self.L)
            plaq_pull = (r.plaq.value - plaq_exact) / r.plaq.error
            chi_pull = (r.chi_t.value - chi_exact) / r.chi_t.error if r.Q_changes else math.nan
            out[alg, b] = (plaq_pull, chi_pull)
        return out


def run_u1_scan(
    betas,
    sizes: U1Sizes,
    model,
    *,
    beta: float,
    L: int,
    hmc_runs: dict | None = None,
    use_pretrained: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> U1Scan:
    """Run HMC, heatbath, flow-MH and flow + heatbath over ``betas`` on ``sizes.study_L``.

    Which flow runs flow-MH at each β (``sizes.study_train_steps`` is 0 in fast mode):

    * at ``β = beta`` on the flow study's own lattice (``study_L == L``): ``model`` itself;
    * a flow shipped for this β (with ``use_pretrained``; :func:`shipped_u1_flow`, which
      prefers one trained on ``study_L``; at ``β = beta`` only that one, since ``model``,
      fine-tuned at ``β``, is the better start otherwise): used as it is when it was trained
      on ``study_L`` or when ``study_train_steps`` is 0, else trained on at ``study_L``;
    * no shipped flow: with ``study_train_steps``, the flow of the β before (``model`` for
      the first) trained on at this β (annealing); without, flow-MH is skipped at this β,
      unless ``β = beta``, where ``model`` runs as it is.

    Training is :func:`train_u1_flow` with ``forward_kl=True`` and ``keep_better=True``
    (``sizes.study_train_steps`` steps from ``sizes.study_lr``, batch ``sizes.train_batch``,
    seed ``seed``). Flow + heatbath runs at every flow β with
    ``sizes.flow_heatbath_every_beta``, else at the largest only. Seeds: HMC and heatbath
    ``seed``, flow-MH ``seed + 1``, flow + heatbath ``seed + 2``.

    Args:
        betas: the couplings of the scan, ascending.
        sizes: the mode's :class:`U1Sizes`.
        model: the flow trained at ``(L, beta)``; its conv nets run at any lattice size.
        beta, L: where ``model`` was trained.
        hmc_runs: ``β → U1Run`` of HMC already run on ``study_L`` (the notebook's freezing
            section); missing ones are run here with ``sizes.hmc``.
        use_pretrained: look for shipped flows at all.
        device: where flows and chains run.
        progress: progress bars.

    Returns:
        A :class:`U1Scan`.

    Raises:
        TypeError, ValueError: naming the argument, before any chain runs: ``betas`` not
            finite reals >= 0, ``sizes`` not a :class:`U1Sizes`, no ``model``, ``beta`` or
            ``L`` out of range, ``hmc_runs`` not a dict of :class:`U1Run`, a bad seed,
            device or flag.
    """
    betas = _checks.reals("betas", betas, low=0)
    _checks.instance("sizes", sizes, U1Sizes)
    if model is None or not hasattr(model, "state_dict") or not hasattr(model, "config"):
        raise checks.ArgumentKindError(
            f"model must be a U(1) flow (build_u1_flow), got {type(model).__name__}"
        )
    beta = checks.real("beta", beta, low=0)
    L = checks.integer("L", L, low=4)
    if hmc_runs is not None:
        _checks.mapping("hmc_runs", hmc_runs, U1Run, empty=True)
    _checks.flag("use_pretrained", use_pretrained)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    _checks.flag("progress", progress)
    study_L = sizes.study_L
    runs = {}
    for b in betas:
        if hmc_runs is not None and b in hmc_runs:
            runs["hmc", b] = hmc_runs[b]
        else:
            chains, steps = sizes.hmc
            runs["hmc", b] = run_u1_algorithm(
                "hmc", b, study_L, steps, chains, seed=seed, device=device, progress=progress
            )
    for b in betas:
        chains, steps = sizes.heatbath
        runs["heatbath", b] = run_u1_algorithm(
            "heatbath", b, study_L, steps, chains, seed=seed, device=device, progress=progress
        )

    notes = []
    shipped = {}
    for b in betas:
        if not use_pretrained or (b == beta and study_L == L):
            shipped[b] = None
            continue
        shipped[b] = shipped_u1_flow(b, study_L, fallback_L8=b != beta, device=device)
        if shipped[b] is not None:
            notes.append(f"β={b:g}: {shipped[b].summary()}")

    flow_betas = sorted(
        b for b in betas if sizes.study_train_steps or b == beta or shipped[b] is not None
    )
    flows = {}
    previous, previous_beta = model, beta
    for b in flow_betas:
        if study_L == L and b == beta:
            flows[b] = model
        else:  # the conv nets run at any L: a flow trained at L = 8 is a start at study_L too
            origin = shipped[b].model if shipped[b] is not None else previous
            start = build_u1_flow(study_L, config=origin.config).to(device)
            start.load_state_dict(origin.state_dict())
            trained_here = shipped[b] is not None and shipped[b].model.config.L == study_L
            if sizes.study_train_steps and not trained_here:
                flows[b], _, fresh = train_u1_flow(
                    study_L,
                    b,
                    sizes.study_train_steps,
                    seed=seed,
                    lr=sizes.study_lr,
                    batch_size=sizes.train_batch,
                    model=start,
                    keep_better=True,
                    forward_kl=True,
                    device=device,
                    progress=progress,
                )
                source = (
                    f"the shipped β={b:g}" if shipped[b] is not None else f"the β={previous_beta:g}"
                )
                kept = (
                    ""
                    if fresh["kept"] == "trained"
                    else f" (training left it worse, loss {fresh['loss_trained']:.2f}: "
                    "the start is kept)"
                )
                notes.append(
                    f"β={b:g}, L={study_L}: {sizes.study_train_steps} steps from {source} "
                    f"flow{kept}; acceptance {fresh['acceptance']:.3f}, ESS {fresh['ess']:.3f} "
                    f"on {fresh['n']} fresh samples"
                )
            else:
                flows[b] = start.eval()
                if trained_here:
                    notes.append(
                        f"β={b:g}, L={study_L}: the shipped flow, trained on this lattice, as it is"
                    )
        previous, previous_beta = flows[b], b
        chains, steps = sizes.flow
        runs["flow", b] = run_u1_algorithm(
            "flow",
            b,
            study_L,
            steps,
            chains,
            model=flows[b],
            seed=seed + 1,
            device=device,
            prefetch=sizes.prefetch,
            progress=progress,
        )
        if sizes.flow_heatbath_every_beta or b == max(flow_betas):
            runs["flow_heatbath", b] = run_u1_algorithm(
                "flow_heatbath",
                b,
                study_L,
                steps,
                chains,
                model=flows[b],
                seed=seed + 2,
                device=device,
                prefetch=sizes.prefetch,
                progress=progress,
            )
    return U1Scan(study_L, runs, flows, tuple(notes))


def scan_table(scan: U1Scan) -> str:
    """A markdown table: every run's plaquette and ``χ_t`` against the exact values, with
    pulls, ``τ_int(Q)`` (``≥`` where only a lower bound) and the acceptance.

    Raises:
        TypeError: unless ``scan`` is a :class:`U1Scan`.
    """
    _checks.instance("scan", scan, U1Scan)
    rows = [
        "| algorithm | β | ⟨cos θ_P⟩ | exact | pull | χ_t | exact | pull | τ_int(Q) | acceptance |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    pulls = scan.pulls()
    for (alg, b), r in sorted(scan.runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        pe = exact.u1_plaquette(b, scan.L)
        ce = exact.u1_topological_susceptibility(b, scan.L)
        pp, cp = pulls[alg, b]
        if r.Q_changes == 0:
            tau = f"≥ {r.n_steps} (Q never changed)"
        else:
            bound = " (≥)" if r.tau_Q_lower_bound else ""
            tau = f"{r.Q.tau_int:.1f} ± {r.Q.tau_int_error:.1f}{bound}"
        rows.append(
            f"| {alg} | {b:g} | {r.plaq.value:.5f}({r.plaq.error:.5f}) | {pe:.5f} | {pp:+.1f}σ "
            f"| {r.chi_t.value:.5f}({r.chi_t.error:.5f}) | {ce:.5f} | {cp:+.1f}σ | {tau} "
            f"| {r.acceptance:.2f} |"
        )
    return "\n".join(rows)


def scan_records(scan: U1Scan, charge: dict | None = None) -> dict:
    """The figures notebook 02 records for its scan, by name.

    Per run ``<alg>, <β>``: ``tau_Q_<alg>_b<β>`` (:attr:`U1Run.tau_Q`), its ``_err`` and
    ``_lower_bound``, ``Q_changes_<alg>_b<β>``, ``plaq_pull_<alg>_b<β>`` and
    ``chi_t_pull_<alg>_b<β>``; per ``β → ChargeDistribution`` of ``charge``: ``kl_b<β>`` and
    ``kl_Q_b<β>``; at the largest flow β: ``tau_Q_hmc_over_flow_b<β>`` and
    ``tau_Q_hmc_over_flow_heatbath_b<β>`` (lower bounds whenever HMC's own τ_int(Q) is one).

    Raises:
        TypeError, ValueError: unless ``scan`` is a :class:`U1Scan` with flow-MH, flow +
            heatbath and HMC runs at its largest flow β, and ``charge`` a dict or ``None``.
    """
    _checks.instance("scan", scan, U1Scan)
    if charge is not None:
        _checks.mapping("charge", charge, empty=True)
    if not scan.flows:
        raise ValueError("scan has no flow-MH runs (scan.flows is empty): nothing to compare")
    top = max(scan.flows)
    lacking = [a for a in ("hmc", "flow", "flow_heatbath") if (a, top) not in scan.runs]
    if lacking:
        raise ValueError(f"scan lacks the {lacking} runs at its largest flow β = {top:g}")
    out = {"study_L": scan.L}
    pulls = scan.pulls()
    for (alg, b), r in scan.runs.items():
        out[f"tau_Q_{alg}_b{b:g}"] = r.tau_Q
        out[f"tau_Q_{alg}_b{b:g}_err"] = r.Q.tau_int_error
        out[f"tau_Q_{alg}_b{b:g}_lower_bound"] = r.tau_Q_lower_bound
        out[f"Q_changes_{alg}_b{b:g}"] = int(r.Q_changes)
        out[f"plaq_pull_{alg}_b{b:g}"] = pulls[alg, b][0]
        out[f"chi_t_pull_{alg}_b{b:g}"] = pulls[alg, b][1]
    for b, d in (charge or {}).items():
        out[f"kl_b{b:g}"] = d.kl
        out[f"kl_Q_b{b:g}"] = d.kl_Q
    b_top = max(scan.flow_betas)
    hmc = scan.runs["hmc", b_top].tau_Q
    out[f"tau_Q_hmc_over_flow_b{b_top:g}"] = hmc / scan.runs["flow", b_top].tau_Q
    out[f"tau_Q_hmc_over_flow_heatbath_b{b_top:g}"] = hmc / scan.runs["flow_heatbath", b_top].tau_Q
    return out


def exact_table(betas, lattices, L_log_z: int) -> str:
    """A markdown table of the exact ``⟨cos θ_P⟩`` and ``χ_t`` at each β on each lattice
    extent in ``lattices``, and ``log Z`` (Haar normalisation) on ``L_log_z``
    (:mod:`lqft_lab.exact`, the character expansion).

    Raises:
        TypeError, ValueError: for ``betas`` not finite reals >= 0, ``lattices`` not
            integers >= 2, or ``L_log_z`` not an integer >= 2.
    """
    betas = _checks.reals("betas", betas, low=0)
    lattices = _checks.integers("lattices", lattices, low=2)
    L_log_z = checks.integer("L_log_z", L_log_z, low=2)
    head = " | ".join(f"⟨cos θ_P⟩ (L={n}) | χ_t (L={n})" for n in lattices)
    rows = [f"| β | {head} | log Z (L={L_log_z}) |", "|---" * (2 * len(lattices) + 2) + "|"]
    for b in betas:
        cols = " | ".join(
            f"{exact.u1_plaquette(b, n):.5f} | {exact.u1_topological_susceptibility(b, n):.5f}"
            for n in lattices
        )
        rows.append(f"| {b:g} | {cols} | {exact.u1_log_z(b, L_log_z):.4f} |")
    return "\n".join(rows)
