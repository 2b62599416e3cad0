"""Notebook 04's compositions: the Nf = 2 Schwinger model's samplers, flows and comparisons.

The target is the gauge field's marginal with two flavours of Wilson fermions integrated out,
``p(θ) ∝ e^{-S_g(θ)} (det D_κ(θ))²``, i.e. the action
:class:`~lqft_lab.actions.schwinger.SchwingerAction` ``S = S_g - 2 log|det D_κ|`` (hopping
form of ``D``, antiperiodic in time; conventions in :mod:`lqft_lab.actions.wilson_dirac`).
A gauge-equivariant U(1) flow (:func:`~lqft_lab.flows.build_u1_flow`) is trained on it by
reverse KL, with either gradient estimator of :class:`~lqft_lab.train.TrainConfig`
(``"reparameterization"`` backpropagates through ``slogdet``; ``"score"`` never
differentiates the action, arXiv:2308.13294), and then used as the proposal of an
independence Metropolis chain, which is exact for any flow (arXiv:2202.11712).

Beside the flows: :class:`SchwingerSizes` (chains and budgets per mode),
:func:`chain_observables` (plaquette, condensate, ``C_π(1)``, ``Q``), :func:`run_hmc_chain`
(an HMC or pseudofermion-HMC chain that also records ``ΔH``, ``e^{-ΔH}`` and the CG
iterations as series), :func:`uniform_flux` and :func:`kappa_scan` (the near-zero mode of a
charged configuration as ``κ → κ_c``), and :func:`compare_samplers` /
:func:`comparison_table` (every sampler against an exact reference, with pulls).

Conventions: links ``θ (B, 2, L, L)`` on a square lattice, ``L`` a multiple of 4 (the flows'
stripe masks); float64 by default, because ``log|det D|`` enters ``log p`` and an
accept/reject; chain observables are those of notebook 02
(:func:`~lqft_lab.studies.u1.u1_observables`: ``plaq``, ``Q``, ``chi_t``).

References:
    M. S. Albergo et al., "Flow-based sampling in the lattice Schwinger model at
    criticality", arXiv:2202.11712;
    P. Białas, P. Korcyl, T. Stebel et al., "Training normalizing flows with computationally
    intensive target probability distributions", arXiv:2308.13294;
    G. Kanwar et al., arXiv:2003.06413 (gauge-equivariant U(1) flows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from .. import checks, linalg
from ..actions.schwinger import SchwingerAction
from ..actions.u1 import check_links
from ..actions.wilson_dirac import WilsonDirac
from ..analysis import gamma_method
from ..flows import U1FlowConfig, build_u1_flow
from ..lattice import resolve_device
from ..observables import schwinger_observables, topological_charge
from ..samplers import (
    HMC,
    Chain,
    FlowMetropolis,
    PseudofermionHMC,
    run_chain,
    u1_links_from_plaquettes,
)
from ..train import GRADIENTS, TrainConfig, Trainer
from . import _checks
from .u1.chains import u1_observables

__all__ = [
    "SchwingerSizes",
    "chain_observables",
    "run_hmc_chain",
    "uniform_flux",
    "KappaScan",
    "kappa_scan",
    "Comparison",
    "compare_samplers",
    "comparison_table",
    "train_schwinger_flow",
    "flow_mh_chain",
]


@dataclass(frozen=True)
class SchwingerSizes:
    """Chains and budgets of notebook 04; the defaults are full mode's (a GPU job at L = 16).

    Chains are ``(chains, production steps)``; a step is one unit-length HMC trajectory
    (``step_size · n_md = 1``) or one flow proposal per chain.

    Attributes:
        hmc_2x2: exact-determinant HMC and pseudofermion HMC on the 2×2 lattice, against
            :func:`~lqft_lab.exact.schwinger.schwinger_2x2`.
        hmc, pf_hmc: exact-determinant HMC and pseudofermion HMC on the study lattice.
        step_size, n_md: their integrator step and steps per trajectory.
        thermalize: trajectories (or flow steps) discarded first.
        train_steps, score_steps: reverse-KL steps of the flow with the reparameterization
            and with the score-function gradient (the comparison of the two estimators).
        train_batch, lr, n_layers, hidden: the flow's training batch, learning rate and
            architecture (:func:`train_schwinger_flow`).
        flow: flow-MH chains; ``chains · steps >= 10⁴`` proposals for the acceptance.
        ess_samples: fresh flow samples for the ESS (at least 4096, DESIGN.md).
        reference_samples: exact pure-gauge draws reweighted by ``(det D)²``.
        reference_max_volume: the largest ``V`` for which those draws are made; beyond it
            the weights' ESS collapses (and dense ``D`` gets slow), and samplers are compared
            with exact-determinant HMC instead.
        scan_L: lattice of the near-zero-mode scan along ``κ`` (charge-one configuration).
    """

    hmc_2x2: tuple[int, int] = (64, 2000)
    hmc: tuple[int, int] = (64, 2000)
    pf_hmc: tuple[int, int] = (64, 2000)
    step_size: float = 0.1
    n_md: int = 10
    thermalize: int = 100
    train_steps: int = 5000
    score_steps: int = 1000
    train_batch: int = 64
    lr: float = 1e-3
    n_layers: int = 16
    hidden: tuple[int, ...] = (8, 8)
    flow: tuple[int, int] = (256, 2000)
    ess_samples: int = 16_384
    reference_samples: int = 65_536
    reference_max_volume: int = 64
    scan_L: int = 16

    def __post_init__(self):
        """Refuse sizes no run could use (each ``TypeError``/``ValueError`` names the field)."""
        for name in ("hmc_2x2", "hmc", "pf_hmc", "flow"):
            _checks.chains_and_steps(name, getattr(self, name), min_steps=4)
        checks.positive("step_size", self.step_size)
        checks.positive("lr", self.lr)
        for name in ("n_md", "train_steps", "score_steps", "n_layers", "train_batch"):
            checks.integer(name, getattr(self, name), low=1)
        checks.integer("thermalize", self.thermalize, low=0)
        checks.integer("ess_samples", self.ess_samples, low=4096)
        checks.integer("reference_samples", self.reference_samples, low=2)
        checks.integer("reference_max_volume", self.reference_max_volume, low=0)
        checks.integer("scan_L", self.scan_L, low=2)

    @classmethod
    def for_mode(cls, mode: str) -> SchwingerSizes:
        """``"full"`` (the defaults) or ``"fast"`` (L = 4 on a CPU: two to three minutes).

        Fast mode runs many short chains: at L = 4 a step's cost is per-operation overhead,
        nearly the same for 16 or 128 chains, while the statistics grow with the chains.

        Raises:
            ValueError: for any other mode.
        """
        mode = checks.choice("mode", mode, ("fast", "full"))
        if mode == "full":
            return cls()
        return replace(
            cls(),
            hmc_2x2=(64, 60),
            hmc=(128, 60),
            pf_hmc=(64, 80),
            step_size=0.2,
            n_md=5,
            thermalize=15,
            train_steps=200,
            score_steps=100,
            lr=1e-2,
            n_layers=8,
            flow=(128, 80),
            ess_samples=4096,
            reference_samples=8192,
            scan_L=12,
        )


def chain_observables(kappa: float) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """What every chain of notebook 04 measures: ``plaquette``, ``condensate`` (per flavour,
    exact), ``pion_1`` (``C_π(1)``) from :func:`~lqft_lab.observables.schwinger_observables`,
    and the topological charge ``Q``; each ``theta (B, 2, L0, L1) -> (B,)``.

    Raises:
        TypeError, ValueError: for a ``kappa`` outside ``[0, 1)``, naming it.
    """
    observables = schwinger_observables(kappa, (1,))
    observables["Q"] = topological_charge
    return observables


class _Recorder:
    """Delegates to an HMC sampler and keeps the last step's info, so that run_chain's
    observables can read ``ΔH`` and the CG iterations of the step just taken."""

    def __init__(self, sampler):
        self.sampler = sampler
        self.State = getattr(sampler, "State", None)
        self.info = None

    def init(self, x, generator=None):
        return self.sampler.init(x, generator=generator)

    def step(self, state, generator=None):
        state, self.info = self.sampler.step(state, generator)
        return state, self.info


def run_hmc_chain(
    sampler: HMC | PseudofermionHMC,
    x0: torch.Tensor,
    n_steps: int,
    generator: torch.Generator | None = None,
    observables: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    *,
    thermalize: int = 0,
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = False,
) -> Chain:
    """An HMC chain through :func:`~lqft_lab.samplers.run_chain` that also records what each
    trajectory did: ``delta_H`` (``ΔH``), ``boltzmann`` (``e^{-ΔH}``, whose mean is exactly 1
    for a reversible, area-preserving integrator) and, for pseudofermion HMC,
    ``cg_iterations`` (all CG iterations of the trajectory), as series ``(n_steps, B)``
    beside the ``observables``. A callback (a
    :class:`~lqft_lab.widgets.SamplingDashboard`'s) sees their latest means live.

    Args:
        sampler: an :class:`~lqft_lab.samplers.HMC` (e.g. on
            :class:`~lqft_lab.actions.SchwingerAction`) or a
            :class:`~lqft_lab.samplers.PseudofermionHMC`.
        x0, n_steps, generator, observables, thermalize, callback, progress: as for
            :func:`~lqft_lab.samplers.run_chain` (measured every trajectory).

    Returns:
        The :class:`~lqft_lab.samplers.Chain`, with ``delta_H``, ``boltzmann`` (and
        ``cg_iterations``) among its ``observables``.

    Raises:
        TypeError, ValueError: for a ``sampler`` that is neither, ``observables`` that are
            not a mapping or that use the recorded names, and what ``run_chain`` refuses.
    """
    _checks.instance("sampler", sampler, (HMC, PseudofermionHMC))
    observables = dict(_checks.mapping("observables", observables or {}, empty=True))
    recorder = _Recorder(sampler)
    recorded = {
        "delta_H": lambda x: recorder.info.delta_H.to(x.dtype),
        "boltzmann": lambda x: torch.exp(-recorder.info.delta_H).to(x.dtype),
    }
    if isinstance(sampler, PseudofermionHMC):
        recorded["cg_iterations"] = lambda x: recorder.info.cg_iterations.to(x.dtype)
    clash = sorted(set(recorded) & set(observables))
    if clash:
        raise ValueError(f"observables must not use the recorded names {clash}")
    observables.update(recorded)
    return run_chain(
        recorder, x0, n_steps, generator, observables,
        thermalize=thermalize, callback=callback, progress=progress,
    )  # fmt: skip


def uniform_flux(L: int, charge: int = 1, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Links ``(1, 2, L, L)`` of an ``L × L`` torus whose every plaquette is ``2π Q/V``:
    the smoothest configuration of topological charge ``Q`` (the classical instanton of the
    torus), in the axial gauge of :func:`~lqft_lab.samplers.u1_links_from_plaquettes`.

    Args:
        L: lattice extent, ``>= 2``.
        charge: the charge ``Q``, an integer with ``|Q| < V/2`` (each plaquette stays below
            ``π``, so the geometric charge is ``Q``).
        dtype: ``torch.float64`` or ``torch.float32``.

    Raises:
        TypeError, ValueError: for bad arguments, naming them.
    """
    L = checks.integer("L", L, low=2)
    V = L * L
    charge = checks.integer("charge", charge, low=-(V - 1) // 2, high=(V - 1) // 2)
    dtype = checks.field_dtype("dtype", dtype)
    plaquettes = torch.full((1, L, L), 2 * math.pi * charge / V, dtype=dtype)
    return u1_links_from_plaquettes(plaquettes)


@dataclass(frozen=True)
class KappaScan:
    """Spectral facts of ``D_κ`` along ``κ`` for fixed links (:func:`kappa_scan`).

    Attributes:
        kappa: the hopping parameters, ``(K,)``.
        lowest_real: the smallest real eigenvalue of ``D`` per configuration, ``(K, B)``
            (NaN where ``D`` has none, as for free links with antiperiodic time).
        min_real_part: the left edge of the spectrum, ``min Re λ``, ``(K, B)``.
        sign_det: the sign of the real ``det D``, ``(K, B)``: the weight of one flavour.
        log_abs_det: ``log|det D|``, ``(K, B)``.
    """

    kappa: np.ndarray
    lowest_real: np.ndarray
    min_real_part: np.ndarray
    sign_det: np.ndarray
    log_abs_det: np.ndarray


def kappa_scan(
    theta: torch.Tensor, kappas: Sequence[float], *, antiperiodic: bool = True
) -> KappaScan:
    """The lowest real eigenvalue and the sign and size of ``det D_κ`` at each ``κ``.

    γ5-hermiticity pairs complex eigenvalues with their conjugates, so ``det D`` is real and
    its sign is that of the product of the real eigenvalues: where one crosses zero (a
    near-zero mode of a charged configuration near ``κ_c``), ``det D`` changes sign, which
    one flavour cannot tolerate as a weight while two, ``(det D)²``, can. An eigenvalue
    counts as real when ``|Im λ| <= 1e-9 (1 + |λ|)``. Dense eigenvalues: small lattices.

    Args:
        theta: links ``(B, 2, L0, L1)``, float64 recommended.
        kappas: hopping parameters, each in ``[0, 1)``.
        antiperiodic: antiperiodic fermion boundary conditions in time.

    Returns:
        A :class:`KappaScan`.

    Raises:
        TypeError, ValueError: for bad links or ``kappas``, naming them.
    """
    check_links(theta, finite=True)
    kappas = _checks.reals("kappas", kappas, low=0, high=1, high_open=True)
    lowest, edge, signs, logs = [], [], [], []
    for kappa in kappas:
        D = WilsonDirac(kappa, antiperiodic=antiperiodic).dense(theta)  # (B, 2V, 2V)
        lam = torch.linalg.eigvals(D)  # (B, 2V)
        real = lam.imag.abs() <= 1e-9 * (1 + lam.abs())
        lowest.append(torch.where(real, lam.real, math.inf).min(dim=1).values)
        edge.append(lam.real.min(dim=1).values)
        sign, logabs = linalg.slogdet(D)
        signs.append(sign.real)
        logs.append(logabs)
    lowest = torch.stack(lowest).double().numpy()
    return KappaScan(
        kappa=np.asarray(kappas, dtype=float),
        lowest_real=np.where(np.isinf(lowest), np.nan, lowest),
        min_real_part=torch.stack(edge).double().numpy(),
        sign_det=np.sign(torch.stack(signs).double().numpy()),
        log_abs_det=torch.stack(logs).double().numpy(),
    )


@dataclass(frozen=True)
class Comparison:
    """One sampler's estimate of one observable next to its reference.

    Attributes:
        sampler, observable: names.
        value, error, tau_int: the Γ-method estimate (chains as replicas).
        reference, reference_error: the reference (error 0 for an exact value).
        pull: ``(value - reference) / sqrt(error² + reference_error²)``.
    """

    sampler: str
    observable: str
    value: float
    error: float
    tau_int: float
    reference: float
    reference_error: float
    pull: float


def compare_samplers(
    chains: Mapping[str, Chain], reference: Mapping[str, tuple[float, float]]
) -> list[Comparison]:
    """Every chain's Γ-method estimate of every referenced observable, with its pull.

    Args:
        chains: sampler name → :class:`~lqft_lab.samplers.Chain`; observables a chain did
            not measure are skipped.
        reference: observable name → ``(value, error)``: an exact value (error 0), a
            reweighted reference, or another sampler's estimate.

    Returns:
        One :class:`Comparison` per (sampler, observable), in the order given.

    Raises:
        TypeError, ValueError: for ``chains`` that are not chains, a ``reference`` that is
            not pairs of finite numbers (errors ``>= 0``), a pull with zero error on both
            sides.
    """
    _checks.mapping("chains", chains, of=Chain)
    _checks.mapping("reference", reference)
    rows = []
    for name, pair in reference.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise checks.ArgumentKindError(
                f"reference[{name!r}] must be a pair (value, error), got {pair!r:.80}"
            )
        checks.real(f"reference[{name!r}] value", pair[0])
        checks.real(f"reference[{name!r}] error", pair[1], low=0)
    for sampler, chain in chains.items():
        for name, (ref, ref_err) in reference.items():
            if name not in chain.observables:
                continue
            data = chain.observables[name].detach().double().cpu().numpy()  # (T, B)
            result = gamma_method(data, warn=False)
            sigma = math.hypot(result.error, ref_err)
            if sigma == 0:
                raise ValueError(f"{sampler}: {name} has zero error and an exact reference")
            rows.append(
                Comparison(
                    sampler=sampler,
                    observable=name,
                    value=result.value,
                    error=result.error,
                    tau_int=result.tau_int,
                    reference=float(ref),
                    reference_error=float(ref_err),
                    pull=(result.value - ref) / sigma,
                )
            )
    return rows


def comparison_table(rows: Sequence[Comparison], reference_name: str = "reference") -> str:
    """A Markdown table of :func:`compare_samplers`' rows: estimate ± error, τ_int, the
    reference (± its error) and the pull in σ.

    Raises:
        TypeError: for rows that are not :class:`Comparison`, a non-string name.
    """
    if not isinstance(reference_name, str):
        raise checks.ArgumentKindError(f"reference_name must be a string, got {reference_name!r}")
    lines = [
        f"| sampler | observable | estimate | τ_int | {reference_name} | pull |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        _checks.instance("rows[i]", row, Comparison)
        ref = f"{row.reference:.5f}"
        if row.reference_error > 0:
            ref += f" ± {row.reference_error:.5f}"
        lines.append(
            f"| {row.sampler} | {row.observable} | {row.value:.5f} ± {row.error:.5f} | "
            f"{row.tau_int:.2f} | {ref} | {row.pull:+.2f}σ |"
        )
    return "\n".join(lines)


def train_schwinger_flow(
    beta: float,
    kappa: float,
    L: int,
    *,
    n_layers: int = 16,
    hidden: tuple[int, ...] = (8, 8),
    kernel: str = "ncp",
    n_steps: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-3,
    gradient: str = "reparameterization",
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = False,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train a gauge-equivariant U(1) flow on the Nf = 2 Schwinger model by reverse KL.

    The lab's recipe (:class:`~lqft_lab.train.TrainConfig`): Adam with a cosine decay from
    ``lr`` to ``lr/100``, gradient clip 100, a fresh batch of ``batch_size`` per step from a
    generator seeded by ``seed`` (which also seeds the weights).

    Args:
        beta: gauge coupling, finite and ``>= 0``.
        kappa: hopping parameter, ``0 <= κ < 1`` (critical near 0.2773 at β = 2).
        L: lattice extent, a multiple of 4.
        n_layers, hidden, kernel: the flow's architecture
            (:class:`~lqft_lab.flows.u1.U1FlowConfig`).
        n_steps, batch_size, lr: optimisation steps, samples per step, learning rate.
        gradient: ``"reparameterization"`` or ``"score"`` (see :class:`TrainConfig`).
        seed: seeds the weights and the training batches.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        dtype: ``torch.float64`` (recommended: the determinant enters ``log p``) or
            ``torch.float32``.
        progress: show a progress bar.

    Returns:
        ``(model, history)``: the trained flow in eval mode on ``device`` in ``dtype`` (its
        :class:`~lqft_lab.flows.u1.U1FlowConfig` as ``model.config``), and the trainer's
        logged metrics (``{"step", "loss", "ess", "acceptance", ...}``, ``loss`` the
        reverse-KL estimate ``E_q[log q + S]`` on the training batch).

    Raises:
        TypeError, ValueError: naming the argument, before anything is built: ``beta`` not
            finite and ``>= 0``, ``kappa`` outside ``[0, 1)``, ``L`` not a multiple of 4,
            ``n_layers``, ``n_steps`` or ``batch_size`` below 1 (below 2 for ``"score"``), a
            bad ``hidden``, ``kernel``, ``lr``, ``gradient``, ``seed``, ``device``, ``dtype``
            or ``progress``.

    Example:
        >>> model, history = train_schwinger_flow(1.0, 0.2, 4, n_layers=8, n_steps=100,
        ...                                       gradient="score")
        >>> [m["loss"] for m in history]   # the reverse-KL estimate, every 5 steps
    """
    action = SchwingerAction(beta, kappa)  # checks beta and kappa, naming them
    L = checks.integer("L", L, low=4)
    n_steps = checks.integer("n_steps", n_steps, low=1)
    architecture = U1FlowConfig(L=L, n_layers=n_layers, hidden=hidden, kernel=kernel)
    checks.choice("gradient", gradient, GRADIENTS)
    seed = _checks.seed("seed", seed)
    device = resolve_device(device)
    dtype = checks.field_dtype("dtype", dtype)
    _checks.flag("progress", progress)
    config = TrainConfig(
        n_steps=n_steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        gradient=gradient,
        log_every=max(1, min(50, n_steps // 20)),
    )
    model = build_u1_flow(config=architecture, seed=seed).to(device=device, dtype=dtype)
    trainer = Trainer(model, action, config)
    history = trainer.train(progress=progress)
    model.eval()
    return model, history


def flow_mh_chain(
    model,
    action,
    n_steps: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    *,
    thermalize: int | None = None,
    observables: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = False,
) -> Chain:
    """Flow-based Metropolis chains on the model's lattice, measuring notebook 02's observables.

    ``batch_size`` independent chains of :class:`~lqft_lab.samplers.FlowMetropolis` (one
    fresh flow proposal per chain per step, accepted with
    ``min(1, w(x')/w(x))``, ``w = p/q``) run through :func:`~lqft_lab.samplers.run_chain`,
    measuring ``plaq`` (mean ``cos θ_P``), ``Q`` (geometric charge) and ``chi_t = Q²/V``
    every step (:func:`~lqft_lab.studies.u1.u1_observables`). The chains start from the
    model's own draws, which are not yet distributed as ``p``; the first ``thermalize``
    steps are discarded (by default 10% of ``n_steps``, at least 10, as in notebook 02).
    Analyse with :func:`~lqft_lab.analysis.gamma_method` (chains as replicas): the chain is
    exact for any flow, and a poor flow shows up as a long ``τ_int``, not as a bias.

    Args:
        model: a U(1) flow on square links ``(B, 2, L, L)`` (e.g. from
            :func:`train_schwinger_flow`); its dtype and device are the chains'.
        action: ``S(θ) -> (B,)``, e.g. :class:`~lqft_lab.actions.schwinger.SchwingerAction`.
        n_steps: production steps, ``>= 2``.
        batch_size: number of chains, ``>= 1``.
        generator: random source on the model's device (``None``: torch's global one).
        thermalize: steps discarded first, ``>= 0``.
        observables: name → ``theta -> (B,)`` measured instead of notebook 02's (e.g.
            :func:`chain_observables`); ``None``: ``{"plaq", "Q", "chi_t"}``.
        callback: ``run_chain``'s ``callback(step, summary)``, e.g. a
            :class:`~lqft_lab.widgets.SamplingDashboard`'s.
        progress: show a progress bar.

    Returns:
        The :class:`~lqft_lab.samplers.Chain`: ``observables`` (by default
        ``{"plaq", "Q", "chi_t"}``) of shape ``(n_steps, batch_size)``, ``accepted``,
        ``log_weights`` of the proposals.

    Raises:
        TypeError, ValueError: naming the argument: a ``model`` that is not a flow of square
            U(1) links, an ``action`` that is not callable or not for those links,
            ``n_steps < 2``, ``batch_size < 1``, a negative ``thermalize``, a
            ``generator`` that is not a ``torch.Generator`` on the model's device type, a
            non-bool ``progress``.
    """
    shape = tuple(getattr(model, "lattice_shape", ()))
    if not isinstance(model, torch.nn.Module) or len(shape) != 3 or shape[0] != 2:
        raise checks.ArgumentKindError(
            f"model must be a flow of U(1) links (B, 2, L, L), got {type(model).__name__} "
            f"with lattice {shape}"
        )
    if shape[1] != shape[2]:
        raise ValueError(f"model must sample a square lattice (2, L, L), got {shape}")
    n_steps = checks.integer("n_steps", n_steps, low=2)
    batch_size = checks.integer("batch_size", batch_size, low=1)
    if thermalize is not None:
        thermalize = checks.integer("thermalize", thermalize, low=0)
    parameter = next(model.parameters(), None)
    _checks.generator("generator", generator, None if parameter is None else parameter.device)
    _checks.flag("progress", progress)
    sampler = FlowMetropolis(model, action, batch_size=batch_size)  # checks model vs action
    thermalize = max(10, n_steps // 10) if thermalize is None else thermalize
    return run_chain(
        sampler,
        None,
        n_steps,
        generator,
        u1_observables(shape[1]) if observables is None else observables,
        thermalize=thermalize,
        callback=callback,
        progress=progress,
    )
