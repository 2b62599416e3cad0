"""Helpers for notebook 02: U(1) gauge theory with gauge-equivariant flows.

Everything here is a thin composition of the tested pieces (actions, samplers, flows,
analysis) so that the notebook's cells stay short. Conventions:

* links are angles ``(B, 2, L, L)``; ``S = -β Σ_P cos θ_P`` (:class:`U1WilsonAction`);
* ``χ_t = ⟨Q²⟩/V`` with the geometric charge :func:`~lqft_lab.observables.topological_charge`;
* a flow's ``logq`` is a density with respect to ``dθ`` on ``[-π, π)^{n_links}``, while
  :func:`lqft_lab.exact.u1_log_z` is normalised to the Haar measure ``dθ/2π`` per link, so
  ``E_q[e^{-S}/q] = Z · (2π)^{n_links}``; :func:`log_z_estimate` removes that factor.

References:
    G. Kanwar et al., arXiv:2003.06413 (gauge-equivariant flows for U(1));
    D. Albergo et al., arXiv:2101.08176 (the tutorial's U(1) example, L = 8, β = 2);
    U. Wolff, hep-lat/0306017 (Γ-method); C. Bonati, P. Rossi, arXiv:1901.09830 (exact results).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import exact
from ..actions import U1WilsonAction
from ..analysis import GammaResult, gamma_method
from ..flows import LineRotationCoupling, build_u1_flow
from ..observables import plaquette, topological_charge
from ..samplers import HMC, FlowMetropolis, FlowMetropolisWithLocal, U1Heatbath, run_chain
from ..train import evaluate, train_and_evaluate

__all__ = [
    "ALGORITHMS",
    "HMC_SETTINGS",
    "u1_observables",
    "train_u1_flow",
    "U1Run",
    "run_u1_algorithm",
    "LogZEstimate",
    "log_z_estimate",
    "ChargeDistribution",
    "charge_distribution",
]

ALGORITHMS = ("flow", "flow_heatbath", "hmc", "heatbath")

# Unit-length HMC trajectories; the step size keeps the acceptance high at every β used here.
HMC_SETTINGS = dict(step_size=0.1, n_steps=10)


def u1_observables(L: int) -> dict:
    """Chain observables ``{"plaq": ⟨cos θ_P⟩, "Q": charge, "chi_t": Q²/V}``, each ``(B,)``."""
    V = L * L
    return {
        "plaq": plaquette,
        "Q": topological_charge,
        "chi_t": lambda theta: topological_charge(theta) ** 2 / V,
    }


def train_u1_flow(
    L: int,
    beta: float,
    n_steps: int,
    *,
    seed: int = 0,
    n_layers: int = 16,
    kernel: str = "ncp",
    lr: float = 1e-3,
    batch_size: int = 64,
    n_eval: int = 4096,
    model=None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    keep_better: bool = False,
    rotations_only: bool = False,
    forward_kl: bool = False,
):
    """Train a gauge-equivariant flow and measure it on fresh samples.

    The recipe of the checkpoints shipped in ``data/models/u1_*.safetensors``: Adam with a
    cosine decay from ``lr`` to ``lr/100``, gradient clip 100, batch ``batch_size``.

    Args:
        L, beta: lattice extent (multiple of 4) and coupling.
        n_steps: optimisation steps.
        seed: seeds the weights (unless ``model`` is given) and the training batches.
        n_layers, kernel: architecture passed to :func:`~lqft_lab.flows.build_u1_flow`.
        model: continue training this model instead of building a new one.
        n_eval: fresh samples for the final :func:`~lqft_lab.train.evaluate`.
        keep_better: measure ``model`` on ``n_eval`` fresh samples before training too, and
            if training left the reverse-KL loss higher, return the weights it started from.
            At large β training can blow up and leave a flow worse than its start (at
            β = 6, L = 8, the shipped flow went from 3.86 to 6.90 nats in 8000 steps of
            batch 128 at 10⁻⁴); a long unattended run should not lose a good start to it.
            Choosing between two flows on samples of their own does not touch the
            exactness of flow-MH, which is exact for any flow.
        rotations_only: train only the model's
            :class:`~lqft_lab.flows.u1.LineRotationCoupling` layers, the plaquette couplings
            frozen (as they were shipped). Their gradients are small and steady beside the
            plaquette couplings' heavy-tailed ones, which a shared clip would let dominate.
        forward_kl: train by maximum likelihood on ``batch_size`` chains that alternate a
            flow-MH move and a heatbath + overrelaxation sweep
            (:class:`~lqft_lab.train.ChainTrainer`) instead of by reverse KL. Its gradient
            is not dominated by a few heavy weights; it is how the shipped flows were
            finished (``data/README.md``).

    Returns:
        ``(model, trainer, metrics)``, ``metrics`` from :func:`~lqft_lab.train.evaluate`
        of the returned weights; with ``keep_better`` it also holds ``"kept"``
        (``"trained"`` or ``"start"``) and ``"loss_trained"``.
    """
    action = U1WilsonAction(beta)
    if model is None:
        model = build_u1_flow(L, n_layers=n_layers, kernel=kernel, seed=seed)
    if rotations_only:
        rotations = [m for m in model.modules() if isinstance(m, LineRotationCoupling)]
        if not rotations:
            raise ValueError(
                "rotations_only needs a flow with line rotations (U1FlowConfig.line_rotations, "
                "or lqft_lab.flows.add_line_rotations)"
            )
        frozen = [p for p in model.parameters() if p.requires_grad]
        model.requires_grad_(False)
        for layer in rotations:
            layer.requires_grad_(True)
    if keep_better:
        model = model.to(device)
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        generator = torch.Generator(device=torch.device(device)).manual_seed(seed + 2)
        before = evaluate(model, action, n_eval, generator=generator)
        model.train()
    try:
        model, trainer, metrics = train_and_evaluate(
            model,
            action,
            n_steps,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            n_eval=n_eval,
            device=device,
            progress=progress,
            local=U1Heatbath(action, n_overrelax=1) if forward_kl else None,
        )
    finally:
        if rotations_only:  # the caller gets the model back as trainable as it came
            for p in frozen:
                p.requires_grad_(True)
    if keep_better:
        # a NaN loss (a non-finite weight) loses to any finite one
        better = metrics["loss"] <= before["loss"] or math.isnan(before["loss"])
        kept = "trained" if better else "start"
        loss_trained = metrics["loss"]
        if kept == "start":
            model.load_state_dict(start)
            metrics = before
        metrics = {**metrics, "kept": kept, "loss_trained": loss_trained}
    return model, trainer, metrics


@dataclass(frozen=True)
class U1Run:
    """One algorithm's chains at one coupling, analysed with the Γ-method.

    Attributes:
        algorithm: ``"flow"``, ``"flow_heatbath"``, ``"hmc"`` or ``"heatbath"``; one step is
            one flow proposal per chain; one proposal and one heatbath + overrelaxation
            sweep; one unit-length trajectory; or one heatbath + overrelaxation sweep.
        beta, L: the theory.
        plaq, chi_t, Q: :class:`~lqft_lab.analysis.GammaResult` of ``cos θ_P``, ``Q²/V``
            and ``Q`` (chains as replicas; ``Q.tau_int`` is the topological τ_int in steps).
        Q_series: the charge ``(T, B)`` as a numpy array, for trace plots.
        Q_changes: how many times the charge changed, summed over chains. Zero means frozen
            topology: the Γ-method then sees constant data and reports ``τ_int = 1/2`` and a
            zero error, which say nothing; :attr:`tau_Q_lower_bound` is the honest figure.
        acceptance: mean acceptance (1 for the heatbath; the flow-MH moves' for
            ``"flow_heatbath"``).
        n_steps, n_chains: production steps and chains.
        seconds: wall time of the run.
    """

    algorithm: str
    beta: float
    L: int
    plaq: GammaResult
    chi_t: GammaResult
    Q: GammaResult
    Q_series: np.ndarray
    Q_changes: int
    acceptance: float
    n_steps: int
    n_chains: int
    seconds: float

    @property
    def tau_Q_lower_bound(self) -> bool:
        """True when ``Q.tau_int`` is only a lower bound: the Γ-method window did not converge,
        or the charge never changed (then ``Q.tau_int`` is replaced by the run length)."""
        return self.Q_changes == 0 or not self.Q.window_converged

    @property
    def tau_Q(self) -> float:
        """``τ_int(Q)`` in steps; the run length ``n_steps`` when ``Q`` never changed."""
        return float(self.n_steps) if self.Q_changes == 0 else self.Q.tau_int


def run_u1_algorithm(
    algorithm: str,
    beta: float,
    L: int,
    n_steps: int,
    n_chains: int,
    *,
    model=None,
    thermalize: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    prefetch: int = 1,
    progress: bool = False,
) -> U1Run:
    """Run ``n_chains`` chains of one algorithm and analyse plaquette, ``χ_t`` and ``Q``.

    HMC and the heatbath start from a cold (unit) configuration, which sits in the ``Q = 0``
    sector: at large β the charge then stays there for a long time, which is the
    topological freezing the notebook shows. The flow starts from its own draws, which are
    not yet distributed as ``p``: a chain sits in a proposal until it meets one of larger
    weight, so with a poor flow the first steps carry the proposals' bias. At L = 16,
    β = 6, 64 chains of 800 steps after the first 10 read ``χ_t`` 4.2σ too high and an
    acceptance of 0.015; 1000 steps after the first 300 read 2.6σ and 0.0075. So the flow,
    too, discards 10% of ``n_steps`` by default.

    Args:
        algorithm: one of :data:`ALGORITHMS`.
        beta, L: coupling and lattice extent.
        n_steps: production steps after ``thermalize`` (default: 10% of ``n_steps``, at
            least 10 for the flow).
        n_chains: independent chains (treated as Γ-method replicas).
        model: the flow, required for ``"flow"`` and ``"flow_heatbath"``
            (:class:`~lqft_lab.samplers.FlowMetropolisWithLocal`: flow-MH moves alternated
            with heatbath sweeps).
        seed: seeds the chain's generator.
        prefetch: flow proposals of this many steps drawn in one pass
            (:class:`~lqft_lab.samplers.FlowMetropolis`); the same chain law, faster on a
            GPU. Not used by the other algorithms.

    Raises:
        ValueError: for an unknown algorithm or a missing model.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    action = U1WilsonAction(beta)
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if algorithm in ("flow", "flow_heatbath"):
        if model is None:
            raise ValueError(f"the {algorithm} algorithm needs a trained model")
        if algorithm == "flow":
            sampler = FlowMetropolis(model, action, batch_size=n_chains, prefetch=prefetch)
        else:
            local = U1Heatbath(action, n_overrelax=1)
            sampler = FlowMetropolisWithLocal(
                model, action, local, batch_size=n_chains, prefetch=prefetch
            )
        x0 = None
        thermalize = max(10, n_steps // 10) if thermalize is None else thermalize
    else:
        x0 = torch.zeros(n_chains, 2, L, L, device=device)  # cold start, Q = 0
        if algorithm == "hmc":
            sampler = HMC(action, **HMC_SETTINGS)
        else:
            sampler = U1Heatbath(action, n_overrelax=1)
        thermalize = max(1, n_steps // 10) if thermalize is None else thermalize
    t0 = time.perf_counter()
    chain = run_chain(
        sampler, x0, n_steps, generator, u1_observables(L), thermalize=thermalize, progress=progress
    )
    seconds = time.perf_counter() - t0
    series = {k: v.double().cpu().numpy() for k, v in chain.observables.items()}  # (T, B)
    return U1Run(
        algorithm=algorithm,
        beta=float(beta),
        L=L,
        plaq=gamma_method(series["plaq"], warn=False),
        chi_t=gamma_method(series["chi_t"], warn=False),
        Q=gamma_method(series["Q"], warn=False),
        Q_series=series["Q"],
        Q_changes=int((np.abs(np.diff(series["Q"], axis=0)) > 0.5).sum()),
        acceptance=chain.acceptance,
        n_steps=n_steps,
        n_chains=n_chains,
        seconds=seconds,
    )


@dataclass(frozen=True)
class LogZEstimate:
    """Importance-sampling estimate of ``log Z`` (Haar normalisation, as :func:`u1_log_z`).

    Attributes:
        value: ``log Ẑ``.
        error: its statistical error (delta method, ``sqrt((1/ESS - 1)/N)`` for ESS per
            sample; the ``O(1/N)`` bias of the logarithm is far below it).
        ess: ESS per sample of the weights.
        n: number of fresh samples.
        lebesgue_offset: ``n_links · log 2π``, subtracted from ``log ⟨e^{-S}/q⟩``.
    """

    value: float
    error: float
    ess: float
    n: int
    lebesgue_offset: float


@torch.no_grad()
def log_z_estimate(
    model, action, n_samples: int, generator=None, batch_size: int = 1024
) -> LogZEstimate:
    """``log Z`` from the flow's importance weights on ``n_samples`` fresh draws.

    ``Z_dθ = ∫ dθ e^{-S} = E_q[e^{-S}/q]`` (``q`` a density w.r.t. ``dθ``), estimated by
    ``(1/N) Σ_i w_i``, ``w_i = e^{-S(θ_i) - logq(θ_i)}``. The exact result of
    :func:`lqft_lab.exact.u1_log_z` uses the Haar measure ``dθ/2π`` per link, so
    ``log Z = log Z_dθ - n_links log 2π``. Because ``q`` is normalised, the estimate is
    unbiased for ``Z`` and ``-log Ẑ`` is an upper bound on the free energy ``F = -log Z`` in
    expectation (Jensen); the reverse-KL loss ``E_q[logq + S]`` is a cruder, deterministic
    bound. Reference: arXiv:2101.08176 sec. on free energies; Nicoli et al., arXiv:2007.07115.

    Returns:
        A :class:`LogZEstimate`.
    """
    logw, _ = _fresh_log_weights(model, action, n_samples, generator, batch_size)
    n = logw.numel()
    log_mean_w = float(torch.logsumexp(logw, 0) - math.log(n))
    w = torch.exp(logw - logw.max())  # rescaled weights; ratios are what matter
    ess = float(w.sum() ** 2 / (n * (w**2).sum()))
    # var(mean w)/mean(w)² = (⟨w²⟩/⟨w⟩² - 1)/N = (1/ESS - 1)/N
    error = math.sqrt(max(1 / ess - 1, 0.0) / n)
    offset = _lebesgue_offset(model)
    return LogZEstimate(log_mean_w - offset, error, ess, n, offset)


def _lebesgue_offset(model) -> float:
    """``n_links · log 2π``: a flow's ``logq`` (per ``dθ``) minus the Haar-normalised one."""
    return math.prod(model.lattice_shape) * math.log(2 * math.pi)


@torch.no_grad()
def _fresh_log_weights(model, action, n_samples: int, generator, batch_size: int, observable=None):
    """``log w = -S - logq`` of ``n_samples`` fresh draws (float64, on the CPU), and
    ``observable(x)`` of the same draws (or None), drawn ``batch_size`` at a time."""
    logw, obs = [], []
    for start in range(0, n_samples, batch_size):
        x, logq = model.sample(min(batch_size, n_samples - start), generator=generator)
        logw.append((-action(x) - logq).double().cpu())
        if observable is not None:
            obs.append(observable(x).cpu())
    return torch.cat(logw), (torch.cat(obs) if observable is not None else None)


@dataclass(frozen=True)
class ChargeDistribution:
    """The topological charge of a flow's fresh samples against the exact ``P(Q)``.

    Attributes:
        charges: ``Q = -q_max, …, q_max`` (``q_max`` the largest ``|Q|`` drawn, at least 3).
        raw: fraction of the flow's samples with each charge: the flow's own ``q(Q)``.
        reweighted: ``Σ_i w_i [Q_i = Q] / Σ_i w_i`` with ``w = e^{-S}/q``: an estimate of
            ``P(Q)`` (consistent for any flow, noisy when the ESS is small).
        reweighted_err: its delta-method errors (independent samples).
        exact: :func:`lqft_lab.exact.u1_charge_distribution`.
        kl: ``KL(q‖p) = E_q[log q + S] + log Z`` on these samples, in nats, and ``kl_err``
            its standard error.
        kl_Q: ``Σ_Q q(Q) log(q(Q)/P(Q))`` from ``raw`` (a plug-in estimate). Mapping a
            configuration to its charge cannot increase a KL divergence, so ``kl_Q <= kl``:
            it is the part of the flow's mismatch that its proposals' topology alone shows.
        n: number of fresh samples.
    """

    charges: np.ndarray
    raw: np.ndarray
    reweighted: np.ndarray
    reweighted_err: np.ndarray
    exact: np.ndarray
    kl: float
    kl_err: float
    kl_Q: float
    n: int


@torch.no_grad()
def charge_distribution(
    model, action: U1WilsonAction, n_samples: int, generator=None, batch_size: int = 1024
) -> ChargeDistribution:
    """Histogram the charge of ``n_samples`` fresh flow samples, raw and reweighted.

    At large β a flow's proposals carry too much topology (a too-broad ``q(Q)``): the prior
    (uniform links) has ``⟨Q²⟩ = V/12``, the target about ``V/(4π²β)``, and a local flow
    squeezes that global distribution only partly. Every such proposal is rejected by
    flow-MH, so this is one of the places where acceptance is lost.

    Args:
        model: a U(1) flow whose lattice is ``L × L``.
        action: the target, a :class:`~lqft_lab.actions.U1WilsonAction`.
        n_samples: fresh samples (>= 2).
        generator: seeds the draws.

    Returns:
        A :class:`ChargeDistribution`.
    """
    if not isinstance(action, U1WilsonAction):
        raise TypeError(f"action must be a U1WilsonAction, got {type(action).__name__}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    logw, charge = _fresh_log_weights(
        model,
        action,
        n_samples,
        generator,
        batch_size,
        observable=lambda x: torch.round(topological_charge(x)).long(),
    )
    logw, charge = logw.numpy(), charge.numpy()
    lattice = tuple(model.lattice_shape[-2:])  # (L0, L1) of the links (2, L0, L1)
    if not np.all(np.isfinite(logw)):
        raise ValueError("the flow produced a non-finite log-weight; it cannot be measured")
    q_max = max(3, int(np.abs(charge).max()))
    charges = np.arange(-q_max, q_max + 1)
    onehot = charge[:, None] == charges[None, :]  # (N, 2 q_max + 1)
    raw = onehot.mean(axis=0)
    w = np.exp(logw - logw.max())
    reweighted = (w @ onehot) / w.sum()
    # delta method for a ratio of means: var = E[w² (1 - P)²]/(N E[w]²) per charge
    resid = onehot - reweighted[None, :]
    reweighted_err = np.sqrt((w[:, None] ** 2 * resid**2).mean(axis=0) / len(w)) / w.mean()
    _, p_exact = exact.u1_charge_distribution(action.beta, lattice, q_max=q_max)
    log_z = exact.u1_log_z(action.beta, lattice) + _lebesgue_offset(model)
    kl_samples = -logw + log_z  # log q + S + log Z_dθ
    drawn = raw > 0
    with np.errstate(divide="ignore"):  # a drawn charge of exact probability 0: KL = inf
        kl_Q = float(np.sum(raw[drawn] * (np.log(raw[drawn]) - np.log(p_exact[drawn]))))
    return ChargeDistribution(
        charges,
        raw,
        reweighted,
        reweighted_err,
        p_exact,
        float(kl_samples.mean()),
        float(kl_samples.std(ddof=1) / math.sqrt(len(kl_samples))),
        kl_Q,
        len(charge),
    )
