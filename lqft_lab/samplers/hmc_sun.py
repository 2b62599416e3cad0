"""Hybrid Monte Carlo for SU(N) links: momenta in su(N), link updates ``U ← exp(εX) U``.

The Hamiltonian is ``H(U, X) = -Σ tr X² + S(U)`` with one momentum ``X`` in su(N)
(anti-Hermitian, traceless) per link, drawn from ``∝ exp(tr X²)`` by
:func:`lqft_lab.groups.sun.random_algebra` (``-tr X² = ½ Σ_a p_a²``, unit Gaussian
coordinates). With the force ``F`` of the action
(:meth:`lqft_lab.actions.SUNWilsonAction.force`, ``dS/dt = 2 Re tr(F X)`` along
``U → e^{tX} U``) Hamilton's equations are

    dU/dt = X U,        dX/dt = F(U),

and ``dH/dt = -2 tr(X F) + 2 Re tr(F X) = 0``. An integrator is a pure function
``(U, X, force_fn, step_size, n_steps) -> (U, X)`` built from two primitive updates, each the
exact flow of one part of ``H``: the kick ``X ← X + ε F(U)`` and the drift
``U ← exp(εX) U``. The drift is a left translation, which preserves Haar measure, and the
kick a shift, so both are volume preserving; their symmetric compositions (leapfrog,
Omelyan) are reversible, ``(U, X) → (U', X') ⇒ (U', -X') → (U, -X)``, which is what makes
the Metropolis test with ``exp(-ΔH)`` exact.

Re-projection, in complex64 only. Every drift multiplies by ``exp(εX)``, which
``torch.linalg.matrix_exp`` returns unitary only up to its truncation error, and that error
has a sign: ``⟨diag(E E† - 1)⟩ ≈ +0.8 ulp`` per exponential. Left multiplication by a
near-unitary matrix neither damps nor cancels an earlier deviation, so ``|U U† - 1|`` grows
*linearly* with the number of drifts. Measured for SU(3) on 8×8: ``+1e-15`` per trajectory of
10 steps in complex128 (``1e-11`` after 10⁴ trajectories: harmless, so nothing is done), but
``+8e-7`` in complex64, ``4e-4`` after 500 trajectories, which rescales plaquettes by as much
and would bias a notebook-length run beyond its statistical error. So in complex64 the end
of every trajectory is projected onto SU(N) (:func:`lqft_lab.groups.sun.project_sun`, an SVD per
link, about 10% of a 10-step trajectory on a CPU) *before* the Metropolis test, so that ``S``
and ``ΔH`` refer to the stored links; this moves links by ``~1e-6``, the round-off of the
integration itself. The integrators never project and are reversible to round-off (tested).

References:
    S. Duane, A. D. Kennedy, B. J. Pendleton, D. Roweth, Phys. Lett. B 195 (1987) 216;
    C. Gattringer, C. B. Lang, "Quantum Chromodynamics on the Lattice" (Springer 2010),
    sec. 8.2 (HMC for gauge fields, momenta in the Lie algebra);
    T. Takaishi, Ph. de Forcrand, Phys. Rev. E 73 (2006) 036706, hep-lat/0505020 (2MN).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import checks
from ..groups.sun import check_matrices, check_special_unitary, expm, project_sun, random_algebra
from .base import FieldState, _accept, initial_action
from .hmc import (
    OMELYAN_LAMBDA,
    HMCInfo,
    _check_force_fn,
    _check_integrator_args,
    _check_trajectory_end,
    _check_trajectory_options,
)

__all__ = [
    "sun_kinetic_energy",
    "sun_leapfrog",
    "sun_omelyan",
    "SUNHMCState",
    "SUNHMCInfo",
    "SUNHMC",
]

ForceFn = Callable[[torch.Tensor], torch.Tensor]


def sun_kinetic_energy(X: torch.Tensor) -> torch.Tensor:
    """Kinetic energy ``K = -Σ tr X²`` of su(N) momenta ``(B, ..., N, N)``, shape ``(B,)``.

    For anti-Hermitian ``X``, ``-tr X² = Σ_ij |X_ij|²``; that form is used (no matrix product,
    and real by construction).

    Raises:
        TypeError: if ``X`` is not a tensor.
        ValueError: for ``X`` that is not complex64/complex128 ``(B, ..., N, N)`` or holds
            NaN or ``inf``.
    """
    _check_momenta(X)
    return _kinetic_energy(X)


def _check_momenta(X: torch.Tensor, like: torch.Tensor | None = None) -> None:
    checks.tensor("X", X, complex_only=True)
    check_matrices(X, "X")
    if X.dim() < 3 or X.shape[0] == 0:
        raise ValueError(
            f"X must have a non-empty batch axis, shape (B, ..., N, N), got {tuple(X.shape)}"
        )
    if like is not None:
        checks.tensor(
            "X", X, complex_only=True, shape=tuple(like.shape), dtype=like.dtype, device=like.device
        )


def _kinetic_energy(X: torch.Tensor) -> torch.Tensor:
    return X.abs().pow(2).flatten(1).sum(dim=1)


def _kick(X: torch.Tensor, F: torch.Tensor, eps) -> torch.Tensor:
    """Momentum update ``X ← X + ε F``: exact flow of ``S`` for time ``ε``."""
    return X + eps * F


def _drift(U: torch.Tensor, X: torch.Tensor, eps) -> torch.Tensor:
    """Link update ``U ← exp(εX) U``: exact flow of ``-Σ tr X²`` for time ``ε``."""
    return expm(eps * X) @ U


def sun_leapfrog(
    U: torch.Tensor, X: torch.Tensor, force_fn: ForceFn, step_size: float, n_steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Leapfrog integration of ``dU/dt = X U``, ``dX/dt = F(U)`` over ``n_steps · ε``.

    One step is ``X(t+ε/2) = X(t) + ε/2 F(U(t))``, ``U(t+ε) = exp(ε X(t+ε/2)) U(t)``,
    ``X(t+ε) = X(t+ε/2) + ε/2 F(U(t+ε))``; consecutive half kicks are merged, so a trajectory
    costs ``n_steps + 1`` force evaluations and ``n_steps`` matrix exponentials.

    Args:
        U: links ``(B, ..., N, N)``, complex, in SU(N).
        X: momenta in su(N), same shape.
        force_fn: ``U -> F(U)`` in su(N), same shape (e.g. ``SUNWilsonAction.force``).
        step_size: ``ε > 0``.
        n_steps: number of steps ``>= 1``.

    Returns:
        ``(U, X)`` at time ``n_steps · ε``.

    Raises:
        TypeError: for ``U``/``X`` that are not tensors, a ``force_fn`` that is not callable,
            a non-number ``step_size`` or non-integer ``n_steps``.
        ValueError: for links that are not complex ``(B, ..., N, N)`` in SU(N), momenta of
            another shape or with NaN/``inf``, ``step_size <= 0``, ``n_steps < 1``, or a
            trajectory that diverges.
    """
    step_size, n_steps = _check_sun_integrator_inputs(U, X, force_fn, step_size, n_steps)
    U, X = _leapfrog(U, X, force_fn, step_size, n_steps)
    return _check_trajectory_end(U, X, step_size, n_steps)


def _check_sun_integrator_inputs(U, X, force_fn, step_size, n_steps) -> tuple[float, int]:
    checks.tensor("U", U, complex_only=True, finite=False)  # NaN: the SU(N) check says it
    check_matrices(U, "U")
    if U.dim() < 3 or U.shape[0] == 0:
        raise ValueError(
            f"U must have a non-empty batch axis, shape (B, ..., N, N), got {tuple(U.shape)}"
        )
    check_special_unitary(U)
    _check_momenta(X, like=U)
    _check_force_fn(force_fn)
    return _check_integrator_args(step_size, n_steps)


def _leapfrog(U, X, force_fn, eps, n_steps):
    # eps: a float, or a real tensor (B, 1, ..., 1) broadcasting against U (one ε per chain)
    X = _kick(X, force_fn(U), eps / 2)  # X(ε/2) = X(0) + ε/2 F(U(0))
    for i in range(n_steps):
        U = _drift(U, X, eps)  # U(t+ε) = exp(ε X(t+ε/2)) U(t)
        if i < n_steps - 1:
            X = _kick(X, force_fn(U), eps)  # X(t+3ε/2) = X(t+ε/2) + ε F(U(t+ε)): merged halves
    X = _kick(X, force_fn(U), eps / 2)  # X(T) = X(T-ε/2) + ε/2 F(U(T))
    return U, X


def sun_omelyan(
    U: torch.Tensor, X: torch.Tensor, force_fn: ForceFn, step_size: float, n_steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order minimum-norm (Omelyan, "2MN") integrator on SU(N), kicks outside.

    One step is ``e^{λεB} e^{εA/2} e^{(1-2λ)εB} e^{εA/2} e^{λεB}`` with ``B`` the kick,
    ``A`` the drift and ``λ = OMELYAN_LAMBDA ≈ 0.1932``; outer kicks of consecutive steps are
    merged, so a trajectory costs ``2 n_steps + 1`` forces and ``2 n_steps`` exponentials.
    The energy error is ``O(ε²)`` with a much smaller coefficient than leapfrog's.

    Args, returns and raises as for :func:`sun_leapfrog`.

    References:
        I. P. Omelyan, I. M. Mryglod, R. Folk, Comput. Phys. Commun. 151 (2003) 272;
        T. Takaishi, Ph. de Forcrand, Phys. Rev. E 73 (2006) 036706, hep-lat/0505020.
    """
    step_size, n_steps = _check_sun_integrator_inputs(U, X, force_fn, step_size, n_steps)
    U, X = _omelyan(U, X, force_fn, step_size, n_steps)
    return _check_trajectory_end(U, X, step_size, n_steps)


def _omelyan(U, X, force_fn, eps, n_steps):
    lam = OMELYAN_LAMBDA
    X = _kick(X, force_fn(U), lam * eps)  # X(t+λε) = X(t) + λε F(U(t))
    for i in range(n_steps):
        U = _drift(U, X, eps / 2)  # U(t+ε/2) = exp(ε/2 X) U(t)
        X = _kick(X, force_fn(U), (1 - 2 * lam) * eps)  # X(t+(1-λ)ε) += (1-2λ)ε F(U(t+ε/2))
        U = _drift(U, X, eps / 2)  # U(t+ε) = exp(ε/2 X) U(t+ε/2)
        last = i == n_steps - 1
        X = _kick(X, force_fn(U), lam * eps if last else 2 * lam * eps)  # X(t+ε+λε), merged
    return U, X


_INTEGRATORS = {"leapfrog": _leapfrog, "omelyan": _omelyan}

SUNHMCState = FieldState  # (x, S): links (B, ..., N, N) and their actions (B,)


SUNHMCInfo = HMCInfo  # accepted, delta_H, accept_prob per chain, as for HMC


class SUNHMC:
    """Hybrid Monte Carlo for SU(N) gauge links over a batch of independent chains.

    Args:
        action: an SU(N) action with ``action(U) -> (B,)``, an integer attribute ``N`` and an
            su(N)-valued ``action.force(U)`` obeying ``dS/dt = 2 Re tr(F X)`` for
            ``U → e^{tX} U`` (e.g. :class:`~lqft_lab.actions.SUNWilsonAction`).
        step_size: integrator step ``ε > 0``.
        n_steps: integrator steps per trajectory (trajectory length ``n_steps · ε``).
        integrator: ``"leapfrog"`` or ``"omelyan"``.
        jitter: draw each chain's step size per trajectory uniformly from
            ``ε (1 ± jitter)``, ``0 <= jitter < 1`` (Mackenzie, Phys. Lett. B 226 (1989)
            369); detailed balance holds for every fixed ``ε``, so the chain stays exact.

    Example:
        >>> action = SUNWilsonAction(beta=4.0, N=3)
        >>> hmc = SUNHMC(action, step_size=0.1, n_steps=10, integrator="omelyan")
        >>> state = hmc.init(haar((16, 2, 8, 8), 3, generator=torch.Generator().manual_seed(0)))
        >>> state, info = hmc.step(state, generator=torch.Generator().manual_seed(1))

    Raises:
        TypeError: for an action without ``force`` or ``N``; a non-number ``step_size`` or
            ``jitter``, a non-integer ``n_steps``.
        ValueError: for bad integrator parameters (``step_size <= 0`` or not finite,
            ``n_steps < 1``, ``jitter`` outside ``[0, 1)``, an unknown ``integrator``); at
            :meth:`init` for links that are not complex ``(B, ..., N, N)`` matrices of the
            action's ``N`` in SU(N) (NaN and ``inf`` included), or half precision.

    References:
        S. Duane et al., Phys. Lett. B 195 (1987) 216; T. Takaishi, Ph. de Forcrand,
        hep-lat/0505020.
    """

    #: The state :meth:`step` continues from (what :func:`run_chain` accepts as ``x0``).
    State = SUNHMCState

    def __init__(
        self,
        action,
        step_size: float,
        n_steps: int,
        integrator: str = "leapfrog",
        jitter: float = 0.0,
    ):
        N = getattr(action, "N", None)
        if not (callable(action) and hasattr(action, "force") and isinstance(N, int)):
            raise TypeError(
                f"SUNHMC needs an SU(N) action with a force and an integer N (e.g. "
                f"SUNWilsonAction), got {type(action).__name__}"
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
            f"SUNHMC({self.action!r}, step_size={self.step_size}, n_steps={self.n_steps}, "
            f"integrator={self.integrator!r}, jitter={self.jitter})"
        )

    def force(self, U: torch.Tensor) -> torch.Tensor:
        """The action's su(N)-valued force ``F(U)``, shape of ``U``."""
        return self.action.force(U)

    def init(self, U: torch.Tensor, generator: torch.Generator | None = None) -> SUNHMCState:
        """Start every chain at the given links ``(B, ..., N, N)`` (``generator`` is unused).

        The links must be in SU(N) to ``√ulp`` of their dtype (``lqft_lab.groups.sun.haar`` for a
        hot start, the identity for a cold one).
        """
        if U is None:
            raise ValueError("SUNHMC.init needs starting links (B, ..., N, N), e.g. from haar")
        checks.tensor("U", U, complex_only=True, finite=False)  # NaN: check_special_unitary
        N = check_matrices(U, "U")
        if U.dim() < 3 or U.shape[0] == 0:
            raise ValueError(
                f"U must have a non-empty batch axis, shape (B, ..., N, N), got {tuple(U.shape)}"
            )
        if N != self.action.N:
            raise ValueError(f"the action is for SU({self.action.N}) but the links are {N}x{N}")
        check_special_unitary(U)
        checks.random_generator("generator", generator, U.device)
        U = U.detach()
        return SUNHMCState(x=U, S=initial_action(self.action, U, "U"))

    def _start(self, x: torch.Tensor) -> SUNHMCState:
        """:meth:`init` without its checks, for fields that come from another chain."""
        with torch.no_grad():
            return SUNHMCState(x=x.detach(), S=self.action(x.detach()))

    def step(
        self, state: SUNHMCState, generator: torch.Generator | None = None
    ) -> tuple[SUNHMCState, SUNHMCInfo]:
        """One trajectory with fresh su(N) momenta and a Metropolis test on ``-ΔH``."""
        U0 = state.x
        ones = (1,) * (U0.dim() - 1)
        real = U0.real.dtype
        X0 = random_algebra(
            U0.shape[:-2], U0.shape[-1], dtype=U0.dtype, device=U0.device, generator=generator
        )
        eps = self.step_size
        if self.jitter > 0:
            u = torch.rand(  # (B, 1, ..., 1): one ε per chain
                (U0.shape[0], *ones), generator=generator, device=U0.device, dtype=real
            )
            eps = eps * (1 + self.jitter * (2 * u - 1))
        with torch.no_grad():
            H0 = _kinetic_energy(X0) + state.S
            U1, X1 = self._integrate(U0, X0, self.force, eps, self.n_steps)
            if U1.dtype == torch.complex64:
                U1 = project_sun(U1)  # the drift of matrix_exp (module docstring)
            S1 = self.action(U1)
            delta_H = _kinetic_energy(X1) + S1 - H0
            accepted = _accept(-delta_H, generator)
            keep = accepted.view(-1, *ones)  # (B, 1, ..., 1)
            new = SUNHMCState(x=torch.where(keep, U1, U0), S=torch.where(accepted, S1, state.S))
            accept_prob = torch.exp(torch.clamp(-delta_H, max=0.0)).nan_to_num(nan=0.0)
        return new, SUNHMCInfo(accepted=accepted, delta_H=delta_H, accept_prob=accept_prob)
