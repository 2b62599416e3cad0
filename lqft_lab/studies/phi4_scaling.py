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
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..actions import Phi4Action
from ..analysis import GammaResult, PowerLawFit, fit_power_law
from ..flows import transfer_real_nvp
from ..observables import estimate, phi4_chain_observables, pole_mass, timeslice_observables
from ..samplers import HMC, FlowMetropolis, LocalMetropolis, run_chain
from ..train import TrainConfig, Trainer, evaluate

__all__ = [
    "Ensemble",
    "ENSEMBLES",
    "ALGORITHMS",
    "AlgorithmRun",
    "run_algorithm",
    "fit_dynamical_exponent",
    "TransferPoint",
    "volume_transfer",
]

ALGORITHMS = ("flow", "hmc", "local")


@dataclass(frozen=True)
class Ensemble:
    """A φ⁴ ensemble with its published ``m_p L`` (arXiv:1904.12072, Table I)."""

    name: str
    L: int
    m2: float
    lam: float
    mpL: float
    mpL_error: float

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

    @property
    def time_per_step(self) -> float:
        """Seconds per Markov step per chain, thermalisation and measurements included."""
        return self.seconds / ((self.n_steps + self.thermalize) * self.n_chains)

    def cost_per_independent_sample(self, observable: str = "chi2") -> float:
        """``time_per_step × 2 τ_int``: seconds per effectively independent measurement."""
        return self.time_per_step * 2 * getattr(self, observable).tau_int


def _sampler(algorithm: str, action, model, n_chains: int, hmc: tuple, local: tuple, prefetch: int):
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
    """
    if not isinstance(ensemble, Ensemble):
        raise TypeError(f"ensemble must be an Ensemble, got {type(ensemble).__name__}")
    for name, value in (("n_steps", n_steps), ("n_chains", n_chains)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    thermalize = n_steps // 10 if thermalize is None else thermalize
    action = ensemble.action
    sampler = _sampler(algorithm, action, model, n_chains, hmc, local, prefetch)
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
    """
    runs = list(runs)
    if len({r.algorithm for r in runs}) > 1:
        raise ValueError("fit one algorithm at a time")
    results = [getattr(r, observable) for r in runs]
    return fit_power_law(
        [r.ensemble.L for r in runs],
        [g.tau_int for g in results],
        [g.tau_int_error for g in results],
    )


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
    """
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
