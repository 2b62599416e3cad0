"""φ⁴ at scale: critical slowing down along a line of constant physics, and volume transfer.

Critical slowing down. Along a line of constant physics the correlation length grows with
``L`` in lattice units while ``m_p L`` stays fixed; the integrated autocorrelation time of a
Markov chain then grows like ``τ_int = α L^z``. Albergo, Kanwar and Shanahan
(arXiv:1904.12072, Table I) give five φ⁴ ensembles, E1–E5, with ``m_p L ≈ 4``; they find
``z = 1.4–2.7`` for HMC, ``0.8–1.4`` for local Metropolis, and ``z`` compatible with zero for
flow-based Metropolis whose models were trained to a common acceptance rate: a flow's
proposals are independent of the current state, so its autocorrelations are set by the
acceptance alone. :func:`run_algorithm` measures one algorithm on one ensemble, and
:func:`fit_dynamical_exponent` fits ``z`` across ensembles.

Volume transfer. A flow built from periodic convolutions is translation-equivariant and
runs at any ``L`` (:func:`~lqft_lab.flows.transfer_real_nvp`). Locality suggests that its
quality per site is what carries over, so ``ESS(V) ≈ ESS(V₀)^(V/V₀)`` (Hackett's talk,
arXiv:2401.10874); :func:`volume_transfer` measures this and what fine-tuning at the
target volume buys.

Conventions: ``time_per_step`` is wall time per Markov step *per chain* (all algorithms run
``B`` chains in one batch); ``τ_int`` is in those steps (one HMC trajectory, one local
sweep, one flow proposal).

The notebook's glue lives here too, so that each of its cells is one step: its sizes per mode
(:data:`SIZES`, :func:`study_sizes`), the results table, the cost fits and the figures its
Checks section records (:func:`scaling_figures`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from .. import checks
from ..actions import Phi4Action
from ..analysis import GammaResult, PowerLawFit, fit_power_law
from ..exact import lattice_momentum_squared
from ..flows import SpectralNormalPrior, transfer_real_nvp
from ..observables import estimate, phi4_chain_observables, pole_mass, timeslice_observables
from ..samplers import HMC, FlowMetropolis, LocalMetropolis, run_chain
from ..train import TrainConfig, Trainer, evaluate
from . import _checks

__all__ = [
    "Ensemble",
    "ENSEMBLES",
    "ALGORITHMS",
    "SIZES",
    "study_sizes",
    "AlgorithmRun",
    "make_sampler",
    "run_algorithm",
    "fit_dynamical_exponent",
    "results_table",
    "cost_fit",
    "crossing_size",
    "TransferPoint",
    "volume_transfer",
    "prior_spectrum",
    "scaling_figures",
]

ALGORITHMS = ("flow", "hmc", "local")
#: what :func:`fit_dynamical_exponent` and :func:`cost_fit` can fit: the Γ-method results
OBSERVABLES = ("chi2", "E", "mp")


@dataclass(frozen=True)
class Ensemble:
    """A φ⁴ ensemble with its published ``m_p L`` (arXiv:1904.12072, Table I).

    ``mpL`` and ``mpL_error`` may be NaN for an ensemble without a published value.

    Raises:
        TypeError, ValueError: for an empty name, ``L`` not an integer >= 2, non-finite
            couplings, ``lam < 0``, or a negative or infinite ``m_p L`` or error.
    """

    name: str
    L: int
    m2: float
    lam: float
    mpL: float
    mpL_error: float

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        checks.integer("L", self.L, low=2)
        checks.real("m2", self.m2)
        checks.real("lam", self.lam, low=0)
        for name in ("mpL", "mpL_error"):
            value = getattr(self, name)
            if not (isinstance(value, float) and math.isnan(value)):  # NaN: not published
                checks.real(name, value, low=0)

    @property
    def action(self) -> Phi4Action:
        return Phi4Action(self.m2, self.lam)

    @property
    def lattice(self) -> tuple[int, int]:
        return (self.L, self.L)


ENSEMBLES: dict[str, Ensemble] = {
    e.name: e
    for e in (
        Ensemble("E1", 6, -4.0, 6.975, 3.96, 0.03),
        Ensemble("E2", 8, -4.0, 6.008, 3.97, 0.05),
        Ensemble("E3", 10, -4.0, 5.550, 4.00, 0.04),
        Ensemble("E4", 12, -4.0, 5.276, 3.96, 0.05),
        Ensemble("E5", 14, -4.0, 5.113, 4.03, 0.06),
    )
}

# Notebook 01b's sizes per mode. ``flow``, ``hmc``, ``local``: ``(chains, production steps)``;
# a flow proposal costs a network pass, so flow chains get fewer steps (their τ_int is also
# the shortest). ``ess_samples``: fresh samples per ESS of the volume transfer; ``finetune``:
# ``{L: steps}`` of fine-tuning there. ``train_batch``, ``train_steps``: the batch and the
# step budget when the flows are first trained on to a target acceptance. ``prefetch``:
# flow chains draw this many steps' proposals in one pass of the flow (they do not depend on
# the chain's state), which a GPU needs to be busy; on a CPU it makes no difference.
SIZES: dict[str, dict] = {
    "fast": dict(
        ensembles=["E1", "E2"],
        flow=(64, 500),
        hmc=(64, 1000),
        local=(64, 2000),
        ess_samples=4096,
        finetune={12: 100},
        train_batch=64,
        train_steps=2000,
        prefetch=1,
    ),
    "full": dict(
        ensembles=list(ENSEMBLES),
        flow=(64, 2000),
        hmc=(256, 5000),
        local=(256, 10000),
        ess_samples=16384,
        finetune={12: 1000, 16: 1000, 24: 500},
        train_batch=256,
        train_steps=8000,
        prefetch=16,
    ),
}


def study_sizes(
    mode: str, ensembles=None, target_acceptance: float = 0.4
) -> tuple[dict, list[str]]:
    """Notebook 01b's sizes for ``mode`` and the ensembles it runs, its inputs checked.

    Args:
        mode: ``"fast"`` or ``"full"`` (:data:`SIZES`).
        ensembles: names from :data:`ENSEMBLES`, at least two (a fit of ``z`` needs two
            sizes); ``None`` takes the mode's.
        target_acceptance: the common acceptance the flows are held to, in ``(0, 1)``.

    Returns:
        ``(size, names)``: a copy of ``SIZES[mode]`` and the list of ensemble names.

    Raises:
        TypeError, ValueError: with a sentence naming the bad argument.
    """
    if not isinstance(mode, str) or mode not in SIZES:
        raise ValueError(f"mode must be 'fast' or 'full', got {mode!r}")
    size = dict(SIZES[mode])
    if isinstance(ensembles, str):
        raise TypeError(
            f"ensembles must be a list of names such as ['E1', 'E2'], got {ensembles!r}"
        )
    names = list(size["ensembles"] if ensembles is None else ensembles)
    unknown = [n for n in names if not isinstance(n, str) or n not in ENSEMBLES]
    if unknown or len(set(names)) < 2 or len(set(names)) != len(names):
        raise ValueError(
            f"choose at least two different ones of {list(ENSEMBLES)} as ensembles, got {names}"
        )
    checks.real(
        "target_acceptance", target_acceptance, low=0, high=1, low_open=True, high_open=True
    )
    return size, names


@dataclass(frozen=True)
class AlgorithmRun:
    """What one algorithm measured on one ensemble.

    Attributes:
        algorithm: ``"flow"``, ``"hmc"`` or ``"local"``.
        ensemble: the :class:`Ensemble`.
        acceptance: mean acceptance over the production steps.
        chi2, E, mp: Γ-method results for the two-point susceptibility, the Ising energy and
            the pole mass (their ``tau_int`` and ``tau_int_error`` are the autocorrelations).
        correlator: the connected zero-momentum correlator ``C(t)``, ``t = 0 … L-1``.
        n_steps, n_chains: production steps per chain and chains.
        seconds: wall time of the whole chain run (thermalisation included).
    """

    algorithm: str
    ensemble: Ensemble
    acceptance: float
    chi2: GammaResult
    E: GammaResult
    mp: GammaResult
    correlator: np.ndarray
    n_steps: int
    n_chains: int
    seconds: float
    thermalize: int = 0

    def __post_init__(self):
        checks.choice("algorithm", self.algorithm, ALGORITHMS)
        _checks.instance("ensemble", self.ensemble, Ensemble)
        checks.integer("n_steps", self.n_steps, low=1)
        checks.integer("n_chains", self.n_chains, low=1)
        checks.integer("thermalize", self.thermalize, low=0)
        checks.real("seconds", self.seconds, low=0)

    @property
    def mpL_pull(self) -> float:
        """``m_p L`` against the published value, in σ of both errors combined."""
        e = self.ensemble
        return (self.mp.value * e.L - e.mpL) / math.sqrt(
            (self.mp.error * e.L) ** 2 + e.mpL_error**2
        )

    @property
    def time_per_step(self) -> float:
        """Seconds per Markov step per chain, thermalisation and measurements included."""
        return self.seconds / ((self.n_steps + self.thermalize) * self.n_chains)

    def cost_per_independent_sample(self, observable: str = "chi2") -> float:
        """``time_per_step × 2 τ_int``: seconds per effectively independent measurement."""
        return self.time_per_step * 2 * getattr(self, observable).tau_int


def make_sampler(
    algorithm: str,
    action,
    model=None,
    n_chains: int = 64,
    hmc: tuple[float, int] = (0.1, 10),
    local: tuple[float, int] = (1.0, 1),
    prefetch: int = 1,
):
    """The sampler that :func:`run_algorithm` runs for ``algorithm`` (arguments as there).

    Raises:
        TypeError, ValueError: for an unknown algorithm, a missing model, ``n_chains`` or
            ``prefetch`` not a positive integer, ``hmc`` not ``(step_size > 0, n_leapfrog >=
            1)``, ``local`` not ``(delta > 0, n_hits >= 1)``.
    """
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {ALGORITHMS}")
    n_chains = checks.integer("n_chains", n_chains, low=1)
    prefetch = checks.integer("prefetch", prefetch, low=1)
    for name, pair in (("hmc", hmc), ("local", local)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name} must be a pair (step size, count), got {pair!r}")
    hmc = (checks.positive("hmc step_size", hmc[0]), checks.integer("hmc n_steps", hmc[1], low=1))
    local = (
        checks.positive("local delta", local[0]),
        checks.integer("local n_hits", local[1], low=1),
    )
    if algorithm == "flow":
        if model is None:
            raise ValueError("the flow algorithm needs a model")
        return FlowMetropolis(model, action, batch_size=n_chains, prefetch=prefetch)
    if algorithm == "hmc":
        step_size, n_steps = hmc
        # A jittered step size keeps a fixed trajectory length from resonating with a mode
        # (a stuck chain was seen at E5 without it).
        return HMC(action, step_size=step_size, n_steps=n_steps, jitter=0.2)
    if algorithm == "local":
        delta, n_hits = local
        return LocalMetropolis(action, delta=delta, n_hits=n_hits)
    raise ValueError(f"unknown algorithm {algorithm!r}; choose from {ALGORITHMS}")


def _synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def run_algorithm(
    algorithm: str,
    ensemble: Ensemble,
    n_steps: int,
    n_chains: int = 64,
    thermalize: int | None = None,
    model=None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    hmc: tuple[float, int] = (0.1, 10),
    local: tuple[float, int] = (1.0, 1),
    prefetch: int = 1,
    progress: bool = False,
) -> AlgorithmRun:
    """Run ``n_chains`` chains of one algorithm and analyse χ₂, E and ``m_p``.

    Args:
        algorithm: ``"flow"`` (independence Metropolis with ``model``), ``"hmc"`` or
            ``"local"`` (checkerboard Metropolis sweeps).
        ensemble: the couplings and lattice.
        n_steps: production steps per chain, each measured.
        n_chains: independent chains run as one batch; the Γ-method treats them as replicas.
        thermalize: steps discarded first (default ``n_steps // 10``; flow chains start from
            model draws and need none, but the default is applied to every algorithm alike).
        model: the flow, at ``ensemble.L``, for ``"flow"``.
        seed: seeds the chain's generator.
        device: where the chains run (the model must be there already).
        hmc: ``(step_size, n_leapfrog)``; the default is a unit trajectory (the step size
            is jittered by ±20% per trajectory).
        local: ``(delta, n_hits)`` of the local Metropolis sweep.
        prefetch: flow proposals of this many steps drawn in one pass
            (:class:`~lqft_lab.samplers.FlowMetropolis`); the same chain law, faster on a
            GPU. Not used by the other algorithms.
        progress: show a progress bar.

    Raises:
        TypeError, ValueError: naming the argument, for everything :func:`make_sampler`
            refuses, ``n_steps`` or ``n_chains`` not an integer >= 2, a negative
            ``thermalize``, a bad seed or device, or a flow built for another lattice.
    """
    if not isinstance(ensemble, Ensemble):
        raise TypeError(f"ensemble must be an Ensemble, got {type(ensemble).__name__}")
    for name, value in (("n_steps", n_steps), ("n_chains", n_chains)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    if thermalize is not None:
        thermalize = checks.integer("thermalize", thermalize, low=0)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    _checks.flag("progress", progress)
    thermalize = n_steps // 10 if thermalize is None else thermalize
    action = ensemble.action
    sampler = make_sampler(algorithm, action, model, n_chains, hmc, local, prefetch)
    lattice = getattr(model, "lattice_shape", None) if algorithm == "flow" else None
    if lattice is not None and tuple(lattice)[-2:] != ensemble.lattice:
        raise ValueError(
            f"model samples a {tuple(lattice)[-2:]} lattice but ensemble {ensemble.name} is "
            f"{ensemble.lattice}"
        )
    generator = torch.Generator(device=device).manual_seed(seed)
    x0 = None if algorithm == "flow" else torch.zeros(n_chains, *ensemble.lattice, device=device)
    observables = {**phi4_chain_observables(("M", "M2", "nn")), **timeslice_observables(ensemble.L)}
    _synchronize(device)
    start = time.perf_counter()
    chain = run_chain(
        sampler,
        x0,
        n_steps,
        generator=generator,
        observables=observables,
        thermalize=thermalize,
        progress=progress,
    )
    _synchronize(device)  # a GPU works asynchronously: time the work, not its launch
    seconds = time.perf_counter() - start
    series = chain.observables
    c = torch.stack([series[f"c{t}"].double().mean() for t in range(ensemble.L)]).cpu().numpy()
    return AlgorithmRun(
        algorithm=algorithm,
        ensemble=ensemble,
        acceptance=float(chain.accepted.double().mean()),
        chi2=estimate(series, "chi2", volume=ensemble.L**2),
        E=estimate(series, "E"),
        mp=pole_mass(series, ensemble.lattice),
        correlator=c - ensemble.L * float(series["M"].double().mean()) ** 2,
        n_steps=n_steps,
        n_chains=n_chains,
        seconds=seconds,
        thermalize=thermalize,
    )


def fit_dynamical_exponent(runs, observable: str = "chi2") -> PowerLawFit:
    """Fit ``τ_int = α L^z`` to runs of one algorithm on several ensembles.

    Args:
        runs: :class:`AlgorithmRun` s of one algorithm on at least two lattice sizes.
        observable: ``"chi2"``, ``"E"`` or ``"mp"``.

    Raises:
        TypeError, ValueError: for runs that are not :class:`AlgorithmRun` s of one
            algorithm on two sizes or more, or an unknown observable.
    """
    runs = _runs_of_one_algorithm(runs, observable)
    if len({r.algorithm for r in runs}) > 1:
        raise ValueError("fit one algorithm at a time")
    results = [getattr(r, observable) for r in runs]
    return fit_power_law(
        [r.ensemble.L for r in runs],
        [g.tau_int for g in results],
        [g.tau_int_error for g in results],
    )


def _runs_of_one_algorithm(runs, observable: str) -> list[AlgorithmRun]:
    """Check the arguments of a fit across ensembles; return the runs as a list."""
    checks.choice("observable", observable, OBSERVABLES)
    if isinstance(runs, (str, bytes)):
        raise TypeError(f"runs must be a sequence of AlgorithmRun, got {runs!r}")
    try:
        runs = list(runs)
    except TypeError:
        raise TypeError(f"runs must be a sequence of AlgorithmRun, got {runs!r}") from None
    for i, r in enumerate(runs):
        _checks.instance(f"runs[{i}]", r, AlgorithmRun)
    if len({r.ensemble.L for r in runs}) < 2:
        raise ValueError(
            f"runs must cover at least two lattice sizes for a power law, got "
            f"{sorted({r.ensemble.L for r in runs})}"
        )
    return runs


def results_table(runs) -> str:
    """A markdown table of χ₂, E, ``m_p L`` and acceptance, one row per run.

    Args:
        runs: ``{(algorithm, ensemble name): AlgorithmRun}``.

    Raises:
        TypeError, ValueError: when ``runs`` is not such a dict.
    """
    _checks.mapping("runs", runs, AlgorithmRun)
    rows = [
        "| ensemble | algorithm | χ₂ | E | m_p L | paper m_p L | acceptance |",
        "|---|---|---|---|---|---|---|",
    ]
    for (alg, name), r in runs.items():
        e, L = r.ensemble, r.ensemble.L
        rows.append(
            f"| {name} | {alg} | {r.chi2.value:.4f}({r.chi2.error:.4f}) "
            f"| {r.E.value:.4f}({r.E.error:.4f}) | {r.mp.value * L:.3f}({r.mp.error * L:.3f}) "
            f"| {e.mpL}({e.mpL_error}) | {r.acceptance:.2f} |"
        )
    return "\n".join(rows)


def cost_fit(
    runs, observable: str = "chi2", scale: float = 1e6
) -> tuple[np.ndarray, np.ndarray, PowerLawFit]:
    """The cost of one independent sample on each ensemble, and a power law through it.

    The cost is ``time_per_step × 2 τ_int``; its relative error is that of ``τ_int`` (the
    timings are taken as exact).

    Args:
        runs: :class:`AlgorithmRun` s of one algorithm on several ensembles.
        observable: ``"chi2"``, ``"E"`` or ``"mp"``.
        scale: units per second (``1e6``: microseconds).

    Returns:
        ``(cost, cost_error, fit)``, the fit of ``cost = α L^z``.

    Raises:
        TypeError, ValueError: as :func:`fit_dynamical_exponent`, and for a ``scale`` that
            is not a positive finite number.
    """
    runs = _runs_of_one_algorithm(runs, observable)
    scale = checks.positive("scale", scale)
    cost = np.array([r.cost_per_independent_sample(observable) for r in runs]) * scale
    results = [getattr(r, observable) for r in runs]
    rel = np.array([g.tau_int_error / g.tau_int for g in results])
    return cost, rel * cost, fit_power_law([r.ensemble.L for r in runs], cost, rel * cost)


def crossing_size(flow: PowerLawFit, other: PowerLawFit) -> float:
    """The ``L`` beyond which ``flow``'s cost line falls below ``other``'s.

    Solves ``α_f L^z_f = α_g L^z_g`` in logarithms (nearly equal exponents would overflow a
    power). Returns ``inf`` when ``other`` grows no faster than ``flow`` or the crossing is
    beyond any float.

    Raises:
        TypeError, ValueError: unless both are :class:`~lqft_lab.analysis.PowerLawFit` s
            with a positive finite ``alpha`` and a finite ``z``.
    """
    for name, fit in (("flow", flow), ("other", other)):
        _checks.instance(name, fit, PowerLawFit)
        checks.positive(f"{name}.alpha", fit.alpha)
        checks.real(f"{name}.z", fit.z)
    if other.z <= flow.z:
        return math.inf
    log_L = math.log(flow.alpha / other.alpha) / (other.z - flow.z)
    return math.exp(log_L) if log_L < 700 else math.inf


@dataclass(frozen=True)
class TransferPoint:
    """A flow trained at ``L0`` evaluated (and optionally fine-tuned) at ``L``.

    Attributes:
        L: the target lattice size.
        ess: ESS of the transferred flow on fresh samples, before fine-tuning.
        ess_locality: the locality estimate ``ESS(V₀)^(V/V₀)``.
        loss, loss_err: the reverse-KL loss ``E_q[log q + S]`` per site on the same fresh
            samples, before fine-tuning, and its standard error.
        ess_finetuned, loss_finetuned, loss_finetuned_err: the same after
            ``finetune_steps`` steps at ``L`` (NaN if none were taken).
        finetune_steps: fine-tuning steps taken.
        finetune_seconds: their wall time.
    """

    L: int
    ess: float
    ess_locality: float
    loss: float = float("nan")
    loss_err: float = float("nan")
    ess_finetuned: float = float("nan")
    loss_finetuned: float = float("nan")
    loss_finetuned_err: float = float("nan")
    finetune_steps: int = 0
    finetune_seconds: float = 0.0

    def __post_init__(self):
        checks.integer("L", self.L, low=2)
        checks.integer("finetune_steps", self.finetune_steps, low=0)
        checks.real("finetune_seconds", self.finetune_seconds, low=0)

    @property
    def finetune_gain_sigma(self) -> float:
        """How far fine-tuning lowered the loss, in standard errors of the difference.

        ``log Z`` is the same before and after, so this is the drop of ``KL(q‖p)``. Once
        the ESS is small it rests on a few weights and can fall by chance when the flow
        got better; the loss averages every sample.
        """
        return (self.loss - self.loss_finetuned) / math.hypot(
            self.loss_err, self.loss_finetuned_err
        )


def volume_transfer(
    model,
    action,
    sizes,
    n_samples: int = 4096,
    finetune_steps: int | dict = 0,
    seed: int = 0,
    progress: bool = False,
) -> list[TransferPoint]:
    """ESS of ``model`` (trained at ``L0 = model.config.L``) at each ``L`` in ``sizes``.

    Args:
        model: a real NVP flow from :func:`~lqft_lab.flows.build_real_nvp`; not modified.
        action: the action, the same couplings at every size.
        sizes: target lattice sizes (even).
        n_samples: fresh samples per ESS (at least 4096 for quoted figures).
        finetune_steps: reverse-KL steps at each target size (an int for all, or a dict
            ``{L: steps}``; 0 skips fine-tuning), with the training defaults of
            :class:`~lqft_lab.train.TrainConfig` but a constant learning rate of 1e-4.
        seed: seeds sampling and fine-tuning.
        progress: progress bars for fine-tuning.

    Raises:
        TypeError, ValueError: naming the argument: ``model`` not a real NVP flow, ``sizes``
            not even integers >= 2, ``n_samples < 2``, ``finetune_steps`` not an integer
            >= 0 (or a dict of them by size), a bad seed.
    """
    config = getattr(model, "config", None)
    if not hasattr(config, "L") or not hasattr(model, "parameters"):
        raise TypeError(
            f"model must be a real NVP flow from build_real_nvp, got {type(model).__name__}"
        )
    sizes = _checks.integers("sizes", sizes, low=2)
    odd = [L for L in sizes if L % 2]
    if odd:
        raise ValueError(f"sizes must be even (checkerboard masks), got {odd}")
    n_samples = checks.integer("n_samples", n_samples, low=2)
    if isinstance(finetune_steps, dict):
        for L, steps in finetune_steps.items():
            checks.integer("finetune_steps size", L, low=2)
            checks.integer(f"finetune_steps[{L}]", steps, low=0)
    else:
        finetune_steps = checks.integer("finetune_steps", finetune_steps, low=0)
    seed = _checks.seed("seed", seed)
    _checks.flag("progress", progress)
    device = next(model.parameters()).device
    L0 = model.config.L
    generator = torch.Generator(device=device).manual_seed(seed)
    at_L0 = evaluate(model, action, n_samples, generator=generator)
    ess0 = at_L0["ess"]
    points = []
    for L in sizes:
        flow = transfer_real_nvp(model, L).eval()
        # at L0 the transferred flow is the model itself: reuse its measurement
        fresh = at_L0 if L == L0 else evaluate(flow, action, n_samples, generator=generator)
        steps = finetune_steps.get(L, 0) if isinstance(finetune_steps, dict) else finetune_steps
        V = L * L
        point = TransferPoint(
            L=L,
            ess=fresh["ess"],
            ess_locality=ess0 ** ((L / L0) ** 2),
            loss=fresh["loss"] / V,
            loss_err=fresh["loss_err"] / V,
        )
        if steps:
            config = TrainConfig(n_steps=steps, lr=1e-4, lr_schedule=None, seed=seed + L)
            trainer = Trainer(flow, action, config)
            trainer.train(progress=progress)
            tuned = evaluate(flow, action, n_samples, generator=generator)
            point = replace(
                point,
                ess_finetuned=tuned["ess"],
                loss_finetuned=tuned["loss"] / V,
                loss_finetuned_err=tuned["loss_err"] / V,
                finetune_steps=steps,
                finetune_seconds=trainer.history[-1]["time"],
            )
        points.append(point)
    return points


def prior_spectrum(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The variance per Fourier mode of a flow's spectral prior, ordered by ``p̂²``.

    Args:
        model: a flow whose ``prior`` is a :class:`~lqft_lab.flows.SpectralNormalPrior`.

    Returns:
        ``(p2, variance)``, both ``(V,)`` with ``p2`` ascending; ``None`` for any other
        prior (white noise has variance 1 at every mode).

    Raises:
        TypeError: for a ``model`` without a ``prior``.
    """
    if not hasattr(model, "prior"):
        raise TypeError(f"model must be a flow with a prior, got {type(model).__name__}")
    prior = model.prior
    if not isinstance(prior, SpectralNormalPrior):
        return None
    p2 = lattice_momentum_squared(prior.lattice_shape).flatten()  # the prior's FFT order
    with torch.no_grad():
        variance = torch.exp(2 * prior.log_scale()).flatten().cpu().numpy()
    order = np.argsort(p2)
    return p2[order], variance[order]


def scaling_figures(runs, fits, transfer, steps_trained=None) -> dict[str, float]:
    """The figures notebook 01b records, by name (the names its tests read).

    Args:
        runs: ``{(algorithm, ensemble name): AlgorithmRun}``, every algorithm on every
            ensemble; the last ensemble is the one whose cost ratios are recorded.
        fits: ``{(algorithm, "chi2" | "E"): PowerLawFit}`` from :func:`fit_dynamical_exponent`.
        transfer: the :class:`TransferPoint` s of :func:`volume_transfer`.
        steps_trained: ``{ensemble name: steps}`` of extra training, if any.

    Returns:
        Name → value. ``z_flow_score`` is below 1 exactly when the flow's ``z(χ₂)`` is
        compatible with zero (``|z| < 2σ`` or ``|z| < 0.3``).

    Raises:
        TypeError, ValueError: naming the argument, when ``runs`` lacks an algorithm on an
            ensemble (all of :data:`ALGORITHMS` are needed), ``fits`` a fit, or ``transfer``
            holds something other than :class:`TransferPoint` s.
    """
    _checks.mapping("runs", runs, AlgorithmRun)
    if any(not isinstance(k, tuple) or len(k) != 2 for k in runs):
        raise ValueError("runs must be keyed by (algorithm, ensemble name)")
    names = list(dict.fromkeys(name for _, name in runs))
    algorithms = list(dict.fromkeys(alg for alg, _ in runs))
    missing = [(a, n) for a in ALGORITHMS for n in names if (a, n) not in runs]
    if missing:
        raise ValueError(f"runs must hold every algorithm on every ensemble; missing {missing}")
    _checks.mapping("fits", fits, PowerLawFit)
    unfitted = [(a, o) for a in algorithms for o in ("chi2", "E") if (a, o) not in fits]
    if unfitted:
        raise ValueError(f"fits lacks {unfitted}")
    if isinstance(transfer, (str, bytes)):
        raise TypeError(f"transfer must be a list of TransferPoint, got {transfer!r}")
    transfer = list(transfer)
    for i, point in enumerate(transfer):
        _checks.instance(f"transfer[{i}]", point, TransferPoint)
    if steps_trained is not None:
        _checks.mapping("steps_trained", steps_trained, empty=True)
    out: dict[str, float] = {}
    for name, steps in (steps_trained or {}).items():
        out[f"extra_train_steps_{name}"] = steps
    for name in names:
        for alg in algorithms:
            r = runs[alg, name]
            out[f"tau_chi2_{alg}_{name}"] = r.chi2.tau_int
            out[f"tau_chi2_{alg}_{name}_err"] = r.chi2.tau_int_error
            out[f"tau_E_{alg}_{name}"] = r.E.tau_int
        r = runs["flow", name]
        out[f"mpL_{name}"] = r.mp.value * r.ensemble.L
        out[f"mpL_{name}_err"] = r.mp.error * r.ensemble.L
        out[f"mpL_pull_{name}"] = r.mpL_pull
        out[f"acceptance_{name}"] = r.acceptance
    for alg in algorithms:
        for obs, key in (("chi2", "z"), ("E", "z_E")):
            out[f"{key}_{alg}"] = fits[alg, obs].z
            out[f"{key}_{alg}_err"] = fits[alg, obs].z_error
    z = fits["flow", "chi2"]
    out["z_flow_score"] = min(abs(z.z) / 0.3, abs(z.z) / (2 * z.z_error))
    last = names[-1]
    for alg in ("hmc", "local"):
        out[f"cost_ratio_{alg}_over_flow_{last}"] = (
            runs[alg, last].cost_per_independent_sample()
            / runs["flow", last].cost_per_independent_sample()
        )
    for p in transfer:
        out[f"ess_transfer_L{p.L}"] = p.ess
        out[f"ess_locality_L{p.L}"] = p.ess_locality
        out[f"loss_per_site_L{p.L}"] = p.loss
        if p.finetune_steps:
            out[f"ess_finetuned_L{p.L}"] = p.ess_finetuned
            out[f"loss_per_site_finetuned_L{p.L}"] = p.loss_finetuned
            out[f"finetune_gain_sigma_L{p.L}"] = p.finetune_gain_sigma
    return out
