"""The four samplers of notebook 02 side by side: chains, Γ-method analysis, ``τ_int(Q)``.

Every algorithm runs a batch of independent chains through :func:`~lqft_lab.samplers.run_chain`
and is analysed with the chains as Γ-method replicas; one step is one flow proposal per
chain, one unit-length HMC trajectory, or one heatbath + overrelaxation sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ... import checks
from ...actions import U1WilsonAction
from ...analysis import GammaResult, gamma_method
from ...observables import plaquette, topological_charge
from ...samplers import HMC, FlowMetropolis, FlowMetropolisWithLocal, U1Heatbath, run_chain
from .. import _checks

__all__ = ["ALGORITHMS", "HMC_SETTINGS", "u1_observables", "U1Run", "run_u1_algorithm"]

ALGORITHMS = ("flow", "flow_heatbath", "hmc", "heatbath")

# Unit-length HMC trajectories; the step size keeps the acceptance high at every β used here.
HMC_SETTINGS = dict(step_size=0.1, n_steps=10)


def u1_observables(L: int) -> dict:
    """Chain observables ``{"plaq": ⟨cos θ_P⟩, "Q": charge, "chi_t": Q²/V}``, each ``(B,)``.

    Raises:
        TypeError, ValueError: unless ``L`` is an integer >= 1.
    """
    L = checks.integer("L", L, low=1)
    V = L * L
    return {
        "plaq": plaquette,
        "Q": topological_charge,
        "chi_t": lambda theta: topological_charge(theta) ** 2 / V,
    }


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

    def __post_init__(self):
        checks.choice("algorithm", self.algorithm, ALGORITHMS)
        checks.integer("L", self.L, low=1)
        checks.integer("n_steps", self.n_steps, low=1)
        checks.integer("n_chains", self.n_chains, low=1)
        checks.integer("Q_changes", self.Q_changes, low=0)

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
        TypeError, ValueError: naming the argument: an unknown algorithm, a missing model or
            one built for another lattice, ``beta`` not finite and >= 0, ``L`` not an
            integer >= 2, ``n_steps`` < 2, ``n_chains`` or ``prefetch`` < 1, a negative
            ``thermalize``, a bad seed or device.
    """
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    beta = checks.real("beta", beta, low=0)
    L = checks.integer("L", L, low=2)
    n_steps = checks.integer("n_steps", n_steps, low=2)
    n_chains = checks.integer("n_chains", n_chains, low=1)
    if thermalize is not None:
        thermalize = checks.integer("thermalize", thermalize, low=0)
    seed = _checks.seed("seed", seed)
    device = _checks.device("device", device)
    prefetch = checks.integer("prefetch", prefetch, low=1)
    _checks.flag("progress", progress)
    if model is not None and algorithm in ("flow", "flow_heatbath"):
        lattice = tuple(getattr(model, "lattice_shape", (2, L, L)))
        if lattice != (2, L, L):
            raise ValueError(f"model samples links of shape {lattice}, not (2, {L}, {L}) for L={L}")
    action = U1WilsonAction(beta)
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
