"""Hybrid Monte Carlo for the Nf = 2 Schwinger model with pseudofermions (the "HMC" of QCD).

One trajectory (Duane, Kennedy, Pendleton, Roweth 1987; Gottlieb et al. 1987):

1. heatbath the pseudofermion at the current links, ``φ = D†χ``, ``χ ~ CN(0, 1)``, so that
   ``S_pf(θ, φ) = χ†χ`` exactly (no solve);
2. draw momenta ``p ~ N(0, 1)`` on every link and integrate Hamilton's equations of
   ``H = Σ p²/2 + S_g(θ) + S_pf(θ, φ)`` with ``φ`` held fixed (leapfrog or Omelyan, the
   integrators of :mod:`.hmc`); every force evaluation is one CG solve;
3. accept the end point with probability ``min(1, e^{-ΔH})`` (:func:`metropolis_accept`).

Steps 2–3 leave ``p(θ, φ) ∝ e^{-S_g - S_pf}`` invariant and step 1 is its exact conditional
for ``φ``, so the links are distributed as ``|det D|² e^{-S_g}``: the same target as
:class:`~lqft_lab.samplers.HMC` with :class:`~lqft_lab.actions.SchwingerAction`, without
a determinant. The CG residual (``action.tol``, default ``1e-10``, complex128) enters ``ΔH``
at a level far below its statistical error.

The state carries the links and their gauge action; ``φ`` is not part of it (redrawn every
trajectory). The info reports the CG iterations spent per chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import checks
from ..actions.pseudofermion import PseudofermionAction
from ..actions.u1 import check_links
from ..actions.wilson_dirac import check_fermion
from .base import _accept, initial_action
from .hmc import _INTEGRATORS, _check_trajectory_options

__all__ = ["PseudofermionHMC", "PseudofermionHMCState", "PseudofermionHMCInfo"]


@dataclass(frozen=True)
class PseudofermionHMCState:
    """Links per chain with their gauge action cached.

    Attributes:
        x: link angles ``(B, 2, L0, L1)``.
        S_gauge: ``S_g(x)``, ``(B,)``.
    """

    x: torch.Tensor
    S_gauge: torch.Tensor


@dataclass(frozen=True)
class PseudofermionHMCInfo:
    """What happened in one trajectory, per chain.

    Attributes:
        accepted: ``(B,)`` bool.
        delta_H: ``H(end) - H(start)``, ``(B,)``.
        accept_prob: ``min(1, exp(-ΔH))``, ``(B,)`` (0 for a NaN trajectory).
        cg_iterations: ``(B,)`` int64, CG iterations of the trajectory (every force
            evaluation and the final action).
        S_pf: the pseudofermion action at the start, ``χ†χ``, ``(B,)`` (mean ``2V``, or
            ``V`` with even/odd).
    """

    accepted: torch.Tensor
    delta_H: torch.Tensor
    accept_prob: torch.Tensor
    cg_iterations: torch.Tensor
    S_pf: torch.Tensor


class PseudofermionHMC:
    """HMC over ``B`` independent chains of U(1) links with an Nf = 2 pseudofermion.

    Args:
        action: the :class:`~lqft_lab.actions.PseudofermionAction` (couplings, CG ``tol``,
            even/odd).
        step_size: integrator step ``ε > 0``.
        n_steps: integrator steps per trajectory (length ``n_steps · ε``).
        integrator: ``"leapfrog"`` or ``"omelyan"``.
        jitter: per-chain step size drawn uniformly from ``ε (1 ± jitter)`` every trajectory,
            ``0 <= jitter < 1`` (as in :class:`~lqft_lab.samplers.HMC`).

    Example:
        >>> hmc = PseudofermionHMC(PseudofermionAction(2.0, 0.2), step_size=0.1, n_steps=10)
        >>> state = hmc.init(torch.zeros(8, 2, 4, 4, dtype=torch.float64))
        >>> state, info = hmc.step(state, torch.Generator().manual_seed(0))

    Raises:
        TypeError: for an ``action`` that is not a ``PseudofermionAction``, a non-number
            ``step_size`` or ``jitter``, a non-integer ``n_steps``.
        ValueError: for ``step_size <= 0``, ``n_steps < 1``, ``jitter`` outside ``[0, 1)``,
            an unknown ``integrator``; at :meth:`init`, for links that are not finite
            float32/float64 ``(B, 2, L0, L1)``.
    """

    #: The state :meth:`step` continues from (what :func:`run_chain` accepts as ``x0``).
    State = PseudofermionHMCState

    def __init__(
        self,
        action: PseudofermionAction,
        step_size: float,
        n_steps: int,
        integrator: str = "leapfrog",
        jitter: float = 0.0,
    ):
        if not isinstance(action, PseudofermionAction):
            raise checks.ArgumentKindError(
                f"action must be a PseudofermionAction, got {type(action).__name__}"
            )
        step_size, n_steps, integrator, jitter = _check_trajectory_options(
            step_size, n_steps, integrator, jitter, _INTEGRATORS
        )
        self.action = action
        self.step_size = step_size
        self.n_steps = n_steps
        self.integrator = integrator
        self.jitter = jitter
        self._integrate = _INTEGRATORS[integrator]

    def __repr__(self) -> str:
        return (
            f"PseudofermionHMC({self.action!r}, step_size={self.step_size}, "
            f"n_steps={self.n_steps}, integrator={self.integrator!r}, jitter={self.jitter})"
        )

    def init(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> PseudofermionHMCState:
        """Start every chain at the links ``x (B, 2, L0, L1)`` (``generator`` is unused).

        Raises:
            TypeError: if ``x`` is not a tensor.
            ValueError: for links that are not float32/float64 ``(B, 2, L0, L1)`` or hold
                NaN or ``inf``.
        """
        check_links(x, "x", finite=True)
        checks.random_generator("generator", generator, x.device)
        x = x.detach()
        return PseudofermionHMCState(x=x, S_gauge=initial_action(self.action.gauge, x, "x"))

    def integrate(
        self, x: torch.Tensor, p: torch.Tensor, phi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Integrate one trajectory at fixed ``phi``: ``(x, p) -> (x', p')``, plus the CG
        iterations it used ``(B,)``. Reversible: ``integrate(x', -p', phi)`` returns to
        ``(x, -p)`` up to the CG tolerance (tested)."""
        check_links(x, "x")
        checks.tensor("p", p, shape=tuple(x.shape), dtype=x.dtype, device=x.device)
        check_fermion(phi, x, "phi")
        with torch.no_grad():
            return self._run(x.detach(), p.detach(), phi, self.step_size)

    def _run(self, x, p, phi, eps):
        action = self.action
        iterations = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)

        def force(theta: torch.Tensor) -> torch.Tensor:
            nonlocal iterations
            F = action.gauge.force(theta) + action._fermion_force(theta, phi)
            iterations = iterations + action.last_iterations
            return F

        x1, p1 = self._integrate(x, p, force, eps, self.n_steps)
        return x1, p1, iterations

    def step(
        self, state: PseudofermionHMCState, generator: torch.Generator | None = None
    ) -> tuple[PseudofermionHMCState, PseudofermionHMCInfo]:
        """One trajectory: pseudofermion heatbath, fresh momenta, Metropolis on ``-ΔH``.

        Raises:
            CGNotConverged: if a solve misses ``action.tol`` within ``action.max_iter``
                (a near-singular ``D``: an exceptional configuration near ``κ_c``).
        """
        x0 = state.x
        B = x0.shape[0]
        with torch.no_grad():
            phi, S_pf0 = self.action._heatbath(x0, generator)  # S_pf(x0, φ) = χ†χ
            p0 = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            eps = self.step_size
            if self.jitter > 0:
                u = torch.rand((B, 1, 1, 1), generator=generator, device=x0.device, dtype=x0.dtype)
                eps = eps * (1 + self.jitter * (2 * u - 1))  # (B, 1, 1, 1): one ε per chain
            H0 = 0.5 * p0.pow(2).flatten(1).sum(dim=1) + state.S_gauge + S_pf0
            x1, p1, iterations = self._run(x0, p0, phi, eps)
            S_g1 = self.action.gauge(x1)
            S_pf1 = self.action._fermion_action(x1, phi)
            iterations = iterations + self.action.last_iterations
            H1 = 0.5 * p1.pow(2).flatten(1).sum(dim=1) + S_g1 + S_pf1
            delta_H = H1 - H0
            accepted = _accept(-delta_H, generator)
            keep = accepted.view(B, 1, 1, 1)
            new = PseudofermionHMCState(
                x=torch.where(keep, x1, x0), S_gauge=torch.where(accepted, S_g1, state.S_gauge)
            )
            accept_prob = torch.exp(torch.clamp(-delta_H, max=0.0)).nan_to_num(nan=0.0)
        info = PseudofermionHMCInfo(
            accepted=accepted,
            delta_H=delta_H,
            accept_prob=accept_prob,
            cg_iterations=iterations,
            S_pf=S_pf0,
        )
        return new, info
