"""Two flavours of Wilson fermions as pseudofermions: the gauge + pseudofermion action.

Nf = 2 degenerate flavours give the gauge field the weight ``(det D)² = det D†D``, written as
a Gaussian integral over a complex pseudofermion field ``φ``::

    det D†D = π^{-N} ∫ dφ dφ* exp(-φ† (D†D)^{-1} φ),      N = 2V components,

so the joint target of links and pseudofermions is ``p(θ, φ) ∝ exp(-S_g(θ) - S_pf(θ, φ))``
with ``S_pf = φ† (D†D)^{-1} φ`` (``D`` in hopping form, :mod:`.wilson_dirac`).

- Heatbath: ``φ | θ ~ CN(0, D†D)`` exactly, drawn as ``φ = D† χ`` with ``χ ~ CN(0, 1)``
  (``torch.randn`` with a complex dtype: variance ½ per real component). Then
  ``S_pf = χ†χ`` and ``⟨S_pf⟩ = 2V`` (tested).
- ``S_pf`` and the force need ``X = (D†D)^{-1} φ``: a conjugate-gradient solve
  (:func:`~lqft_lab.actions.cg.conjugate_gradient`), always in complex128, whatever the
  links' precision (complex64 CG stalls near a relative residual of 1e-6); results come
  back in the links' dtype. The iterations of the last solve are in ``last_iterations``.
- Force: with ``Y = D X`` and ``t_mu(x) = Y(x)† (1 - γ_mu) U_mu(x) X(x+mû)
  - Y(x+mû)† (1 + γ_mu) U_mu(x)* X(x)`` (``U`` carrying the time-boundary sign),
  ``∂S_pf/∂θ_mu(x) = -2κ Im t_mu(x)`` (``../shared/notes/04-schwinger.md`` point 5); it is
  ``-∂_θ ‖D(θ) X‖²`` at fixed ``X`` (tested against autograd and finite differences).
- Even/odd (``even_odd=True``): ``det D = det M`` with ``M = 1 - D_eo D_oe`` on the even
  sites, so the pseudofermion lives on the even sites only (full-lattice shape, zeros on
  odd sites): ``φ_e = M† χ_e``, ``S_pf = φ_e† (M†M)^{-1} φ_e`` with ``⟨S_pf⟩ = V``; CG
  needs about half the iterations. Same marginal ``|det D|² e^{-S_g}`` for the links.

References:
    D. H. Weingarten, D. N. Petcher, Phys. Lett. B 99 (1981) 333 (pseudofermions);
    S. Duane, A. D. Kennedy, B. J. Pendleton, D. Roweth, Phys. Lett. B 195 (1987) 216;
    T. DeGrand, P. Rossi, Comput. Phys. Commun. 60 (1990) 211 (even/odd preconditioning);
    M. S. Albergo et al., arXiv:2106.05934 (pseudofermions for flows).
"""

from __future__ import annotations

import torch

from .. import checks
from ..lattice import shift
from .cg import CGResult, conjugate_gradient
from .u1 import U1WilsonAction, check_generator, check_links
from .wilson_dirac import GAMMA, WilsonDirac, check_fermion

__all__ = ["PseudofermionAction"]


def _hop_form(U: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``t_mu(x) = A(x)†(1-γ_mu) U_mu(x) B(x+mû) - A(x+mû)†(1+γ_mu) U_mu(x)* B(x)``,
    complex ``(B, 2, L0, L1)``: ``∂(A† H B)/∂θ_mu(x) = i t_mu(x)`` for the hopping term ``H``
    of ``D = 1 - κH`` (the derivative of ``U_mu(x)`` is ``i U_mu(x)``)."""
    gamma = GAMMA.to(dtype=A.dtype, device=A.device)
    out = []
    for mu in (0, 1):
        Umu = U[:, mu, :, :, None]  # (B, L0, L1, 1)
        fwd = Umu * shift(B, mu)  # U_mu(x) B(x + mû)
        bwd = Umu.conj() * B  # U_mu(x)* B(x), paired with A(x + mû)
        g_fwd = torch.einsum("ab,...b->...a", gamma[mu], fwd)
        g_bwd = torch.einsum("ab,...b->...a", gamma[mu], bwd)
        t = (A.conj() * (fwd - g_fwd)).sum(-1) - (shift(A, mu).conj() * (bwd + g_bwd)).sum(-1)
        out.append(t)
    return torch.stack(out, dim=1)  # (B, 2, L0, L1)


class PseudofermionAction:
    """``S(θ, φ) = -β Σ cos θ_P + φ† (D†D)^{-1} φ``: U(1) links and an Nf = 2 pseudofermion.

    Args:
        beta: gauge coupling, finite and ``>= 0``.
        kappa: hopping parameter, ``0 <= κ < 1``.
        tol: relative residual of the CG solves, ``0 < tol < 1`` (``1e-10`` keeps ``ΔH``
            exact to far below its statistical error).
        force_tol: relative residual of the solves inside :meth:`force` (``None``: ``tol``).
            HMC stays exact with a looser one: CG from a zero start makes the force a
            deterministic function of the links, so the integrator stays reversible and
            area-preserving, and only ``ΔH`` (computed with ``tol``) decides. Near ``κ_c`` a
            trajectory that passes close to a near-zero mode can make CG stagnate just above
            ``1e-10``; ``1e-8`` for the forces avoids that at no cost in exactness.
        even_odd: even/odd preconditioned pseudofermions (module docstring).
        antiperiodic: antiperiodic fermion boundary conditions in time (the default).
        max_iter: CG iteration limit per solve (``None``: the default of
            :func:`~lqft_lab.actions.cg.conjugate_gradient`).

    Attributes:
        gauge: the :class:`~lqft_lab.actions.U1WilsonAction`.
        dirac: the :class:`~lqft_lab.actions.wilson_dirac.WilsonDirac` operator.
        last_iterations: ``(B,)`` CG iterations of the most recent solve (``None`` before).

    Links ``theta (B, 2, L0, L1)`` float64 (or float32); pseudofermions ``phi (B, L0, L1, 2)``
    complex128 (complex64 with float32 links).

    Example:
        >>> action = PseudofermionAction(beta=2.0, kappa=0.2)
        >>> theta = torch.zeros(4, 2, 4, 4, dtype=torch.float64)
        >>> phi = action.heatbath(theta, torch.Generator().manual_seed(0))
        >>> action(theta, phi).shape, action.force(theta, phi).shape
        (torch.Size([4]), torch.Size([4, 2, 4, 4]))
    """

    def __init__(
        self,
        beta: float,
        kappa: float,
        *,
        tol: float = 1e-10,
        even_odd: bool = False,
        antiperiodic: bool = True,
        max_iter: int | None = None,
        force_tol: float | None = None,
    ):
        self.gauge = U1WilsonAction(beta)
        self.dirac = WilsonDirac(kappa, antiperiodic=antiperiodic)
        self.tol = checks.real("tol", tol, low=0, high=1, low_open=True, high_open=True)
        if force_tol is not None:
            force_tol = checks.real(
                "force_tol", force_tol, low=0, high=1, low_open=True, high_open=True
            )
        self.force_tol = self.tol if force_tol is None else force_tol
        self.even_odd = checks.boolean("even_odd", even_odd)
        self.max_iter = None if max_iter is None else checks.integer("max_iter", max_iter, low=1)
        self.last_iterations: torch.Tensor | None = None

    @property
    def beta(self) -> float:
        return self.gauge.beta

    @property
    def kappa(self) -> float:
        return self.dirac.kappa

    def __repr__(self) -> str:
        eo = ", even_odd=True" if self.even_odd else ""
        ftol = "" if self.force_tol == self.tol else f", force_tol={self.force_tol}"
        return (
            f"PseudofermionAction(beta={self.beta}, kappa={self.kappa}, tol={self.tol}{ftol}{eo})"
        )

    def n_components(self, theta: torch.Tensor) -> int:
        """Complex components of ``φ`` per configuration, ``⟨S_pf⟩`` at the heatbath:
        ``2V`` (``V`` with ``even_odd``)."""
        check_links(theta)
        V = theta.shape[2] * theta.shape[3]
        return V if self.even_odd else 2 * V

    # -- internals: complex128 links and fields ----------------------------------------------

    def _links(self, theta: torch.Tensor) -> torch.Tensor:
        return self.dirac.links(theta.to(torch.float64))  # (B, 2, L0, L1) complex128

    def _even(self, psi: torch.Tensor) -> torch.Tensor:
        even = self.dirac.parity_mask(psi.shape[1], psi.shape[2], device=psi.device)
        return even * psi

    def _op(self, U: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D ψ``, or ``M ψ_e`` with ``even_odd``."""
        if self.even_odd:
            return self.dirac._schur(U, psi, dagger=False)
        return self.dirac._apply(U, psi)

    def _op_dagger(self, U: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D† ψ``, or ``M† ψ_e`` with ``even_odd``."""
        if self.even_odd:
            return self.dirac._schur(U, psi, dagger=True)
        return self.dirac._apply_dagger(U, psi)

    def _solve(self, U: torch.Tensor, phi: torch.Tensor, tol: float | None = None) -> CGResult:
        """``X = (D†D)^{-1} φ`` (or ``(M†M)^{-1} φ_e``) in complex128, by CG to ``tol``
        (``None``: the action's ``tol``)."""
        phi = phi.to(torch.complex128)
        if self.even_odd:
            phi = self._even(phi)
        result = conjugate_gradient(
            lambda v: self._op_dagger(U, self._op(U, v)),
            phi,
            tol=self.tol if tol is None else tol,
            max_iter=self.max_iter,
        )
        self.last_iterations = result.iterations
        return result

    def _check(self, theta: torch.Tensor, phi: torch.Tensor) -> None:
        check_links(theta)
        check_fermion(phi, theta, "phi")

    # -- public interface ----------------------------------------------------------------

    def heatbath(
        self, theta: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``φ ~ CN(0, D†D)`` exactly: ``φ = D†χ``, ``χ ~ CN(0, 1)``.

        Args:
            theta: links ``(B, 2, L0, L1)``.
            generator: random source on ``theta``'s device (``None``: torch's default).

        Returns:
            ``phi (B, L0, L1, 2)``, complex of the links' precision (zero on odd sites with
            ``even_odd``).
        """
        check_links(theta)
        check_generator(generator, theta.device)
        return self._heatbath(theta, generator)[0]

    def params(self) -> dict[str, float | bool]:
        """Couplings as a plain dict (stored in checkpoints and records); the solver's
        tolerances are numerics, not part of the target."""
        return {
            "beta": self.beta,
            "kappa": self.kappa,
            "antiperiodic": self.dirac.antiperiodic,
            "even_odd": self.even_odd,
        }

    def _heatbath(self, theta, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(φ, S_pf)`` with ``S_pf = χ†χ`` exactly, no solve needed."""
        B, _, L0, L1 = theta.shape
        ctype = torch.complex128 if theta.dtype == torch.float64 else torch.complex64
        chi = torch.randn(B, L0, L1, 2, generator=generator, dtype=ctype, device=theta.device)
        chi = chi.to(torch.complex128)
        if self.even_odd:
            chi = self._even(chi)
        phi = self._op_dagger(self._links(theta), chi)
        S_pf = (chi.conj() * chi).real.flatten(1).sum(dim=1)
        return phi.to(ctype), S_pf.to(theta.dtype)

    def solve(self, theta: torch.Tensor, phi: torch.Tensor) -> CGResult:
        """``X = (D†D)^{-1} φ`` (``(M†M)^{-1} φ_e`` with ``even_odd``) by CG in complex128.

        Returns:
            The :class:`~lqft_lab.actions.cg.CGResult` (``x`` complex128 ``(B, L0, L1, 2)``,
            ``iterations`` ``(B,)``, also stored in ``last_iterations``).

        Raises:
            TypeError, ValueError: for links or ``phi`` that do not fit.
            CGNotConverged: if a sample misses ``tol``.
        """
        self._check(theta, phi)
        return self._solve(self._links(theta), phi)

    def fermion_action(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``S_pf = φ† (D†D)^{-1} φ``, real ``(B,)`` in the links' dtype.

        Differentiable in ``theta`` and ``phi`` without backpropagating through CG: the
        backward pass reuses the solution ``X = (D†D)^{-1} φ`` of the forward one,
        ``∂S_pf/∂θ`` is the analytic pseudofermion force (:meth:`force`) and
        ``∂S_pf/∂φ* = X`` (torch's gradient of a real function of a complex tensor is
        ``2 ∂/∂φ*``, so ``phi.grad = 2X``); ``D†D`` is Hermitian, so no second (adjoint)
        solve is needed. This is what reverse-KL training of a pseudofermion flow uses.
        """
        self._check(theta, phi)
        return self._differentiable_fermion_action(theta, phi)

    def dense_fermion_action(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``S_pf = |D^{-†}φ|²`` (``|M^{-†}φ_e|²`` with ``even_odd``) by a dense LU solve,
        real ``(B,)`` in the links' dtype.

        The same number as :meth:`fermion_action`, ``φ†(D†D)^{-1}φ``, without CG: the solve
        is with ``D†`` itself, whose condition number is the square root of ``D†D``'s, so it
        stays accurate near a zero mode of ``D``, where CG on ``D†D`` stalls at a relative
        residual of about ``eps · cond(D†D)``. Dense matrices of size ``2V``
        (:meth:`~lqft_lab.actions.wilson_dirac.WilsonDirac.dense`): small lattices, as the
        dense determinant. Differentiable in ``theta`` and ``phi`` through the solve.
        """
        self._check(theta, phi)
        theta64 = theta.to(torch.float64)
        vectors = phi.to(torch.complex128).reshape(phi.shape[0], -1)
        if self.even_odd:
            op = self.dirac.dense_schur(theta64)
            vectors = vectors[:, self.dirac.even_sites(*theta.shape[2:], device=theta.device)]
        else:
            op = self.dirac.dense(theta64)
        y = torch.linalg.solve(op.mH, vectors)
        return (y.conj() * y).real.sum(dim=1).to(theta.dtype)

    def _differentiable_fermion_action(self, theta, phi) -> torch.Tensor:
        if torch.is_grad_enabled() and (theta.requires_grad or phi.requires_grad):
            return _FermionAction.apply(theta, phi, self)
        return self._fermion_action(theta, phi)

    def _fermion_action(self, theta, phi) -> torch.Tensor:
        U = self._links(theta)
        X = self._solve(U, phi).x
        phi = phi.to(torch.complex128)
        if self.even_odd:
            phi = self._even(phi)
        return (phi.conj() * X).real.flatten(1).sum(dim=1).to(theta.dtype)

    def __call__(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``S = S_g(θ) + S_pf(θ, φ)``, ``(B,)``."""
        self._check(theta, phi)
        return self.gauge(theta) + self._differentiable_fermion_action(theta, phi)

    def force(self, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``-dS/dθ`` at fixed ``φ``: the gauge force plus the analytic pseudofermion force.

        Returns:
            Shape and dtype of ``theta``.
        """
        self._check(theta, phi)
        return self.gauge.force(theta) + self._fermion_force(theta, phi)

    def _fermion_force(self, theta, phi) -> torch.Tensor:
        U = self._links(theta)
        return self._force_from_solution(theta, U, self._solve(U, phi, self.force_tol).x)

    def _force_from_solution(self, theta, U, X) -> torch.Tensor:
        """``-∂S_pf/∂θ`` at fixed ``φ`` from ``X = (D†D)^{-1} φ`` (``(M†M)^{-1} φ_e``)."""
        kappa = self.kappa
        if not self.even_odd:
            Y = self.dirac._apply(U, X)
            # ∂S_pf/∂θ = -2κ Im t(Y, X)  (notes, point 5)
            return (2 * kappa * _hop_form(U, Y, X).imag).to(theta.dtype)
        # S_pf = ‖M X‖² at fixed X, M = 1 - D_eo D_oe: dM X = -(dD_eo Z_o + D_eo dD_oe X_e)
        # with Z_o = D_oe X_e; and D_eo† Y_e = W_o, so with dD = -κ i t dθ:
        # ∂S_pf/∂θ = 2κ Im[t(Y_e, Z_o) + t(W_o, X_e)]
        odd = 1 - self.dirac.parity_mask(X.shape[1], X.shape[2], device=X.device)
        Y = self.dirac._schur(U, X, dagger=False)  # Y_e = M X_e
        Z = odd * self.dirac._apply(U, X)  # Z_o = D_oe X_e
        W = odd * self.dirac._apply_dagger(U, Y)  # W_o = (D_eo)† Y_e
        t = _hop_form(U, Y, Z) + _hop_form(U, W, X)
        return (-2 * kappa * t.imag).to(theta.dtype)


class _FermionAction(torch.autograd.Function):
    """``S_pf(θ, φ)`` with the gradients of :meth:`PseudofermionAction.fermion_action`."""

    @staticmethod
    def forward(ctx, theta, phi, action):
        U = action._links(theta.detach())
        X = action._solve(U, phi.detach()).x
        phi_c = phi.detach().to(torch.complex128)
        if action.even_odd:
            phi_c = action._even(phi_c)
        ctx.action = action
        ctx.save_for_backward(theta, X)
        ctx.phi_dtype = phi.dtype
        return (phi_c.conj() * X).real.flatten(1).sum(dim=1).to(theta.dtype)

    @staticmethod
    def backward(ctx, grad):
        theta, X = ctx.saved_tensors
        action = ctx.action
        grad_theta = grad_phi = None
        if ctx.needs_input_grad[0]:
            force = action._force_from_solution(theta, action._links(theta), X)
            grad_theta = -grad[:, None, None, None] * force
        if ctx.needs_input_grad[1]:
            grad_phi = (2 * grad.to(X.real.dtype)[:, None, None, None] * X).to(ctx.phi_dtype)
        return grad_theta, grad_phi, None
