"""Two-dimensional SU(N) lattice gauge theory: links, plaquettes, staples, Wilson action.

Conventions (see DESIGN.md). A configuration is a complex tensor ``U`` of shape
``(B, 2, L0, L1, N, N)``: ``U[b, mu, x0, x1]`` is the link ``U_mu(x)`` in SU(N) from ``x`` to
``x + mû``, with periodic boundaries; neighbours follow :func:`lqft_lab.lattice.shift`. The
plaquette at ``x`` is

    U_P(x) = U_0(x) U_1(x + 0̂) U_0(x + 1̂)† U_1(x)†,

and the Wilson action is ``S(U) = -(β/N) Σ_x Re tr U_P(x)``. A gauge transformation
``Ω(x)`` in SU(N) maps ``U_mu(x) → Ω(x) U_mu(x) Ω(x + mû)†`` and ``U_P(x) → Ω(x) U_P(x)
Ω(x)†``, so traces of plaquettes and of every closed loop are invariant.

Staples: the action depends on one link through ``-(β/N) Re tr[U_mu(x) A_mu(x)]`` with the
staple sum (``ν ≠ mu``)

    A_mu(x) = U_ν(x + mû) U_mu(x + ν̂)† U_ν(x)† + U_ν(x + mû - ν̂)† U_mu(x - ν̂)† U_ν(x - ν̂),

used by the HMC force and the heatbath. Force: moving one link along ``U → e^{tX} U`` with
``X`` in su(N) (anti-Hermitian, traceless) changes the action at the rate
``dS/dt = 2 Re tr(F X)`` summed over links, where ``F = -(β/2N) P_su(N)[U A]`` is
:meth:`SUNWilsonAction.force`; with HMC momenta ``X`` of kinetic energy ``-Σ tr X²`` the
equations of motion are ``dU/dt = X U`` and ``dX/dt = F``.

References:
    K. G. Wilson, Phys. Rev. D 10 (1974) 2445;
    D. Boyda et al., "Sampling using SU(N) gauge equivariant flows", arXiv:2008.05456, sec. V;
    C. Gattringer, C. B. Lang, "Quantum Chromodynamics on the Lattice" (Springer 2010), ch. 2
    and 8 (staples, HMC on the group).
"""

from __future__ import annotations

import torch

from .. import checks
from ..groups.sun import check_matrices, dagger, haar, project_algebra
from ..lattice import shift
from .u1 import check_generator

__all__ = [
    "check_sun_links",
    "sun_plaquettes",
    "sun_staples",
    "sun_gauge_transform",
    "random_sun_gauge_transform",
    "SUNWilsonAction",
    "SingleMatrixAction",
]


def check_sun_links(U: torch.Tensor, name: str = "U", *, finite: bool = False) -> int:
    """Check that ``U`` is a batch of 2D SU(N) links ``(B, 2, L0, L1, N, N)``; return ``N``.

    Only the kind, dtype and shape are checked (no device sync), unless ``finite``: then
    NaN and ``±inf`` are refused too (for a sampler's ``init``, not for every step).
    Membership of SU(N) is not checked here.

    Raises:
        TypeError: if ``U`` is not a tensor.
        ValueError: if it is not complex64/complex128 (half precision refused), not of that
            shape (``B >= 1``, extents >= 2, N >= 2), or (with ``finite``) not finite.
    """
    checks.tensor(name, U, allow_complex=True, finite=False)  # the half-precision message
    N = check_matrices(U, name)
    if U.dim() != 6 or U.shape[1] != 2 or min(U.shape[2:4]) < 2 or U.shape[0] == 0:
        raise ValueError(
            f"{name} must hold 2D SU(N) links of shape (B, 2, L0, L1, N, N) with B >= 1 and "
            f"L0, L1 >= 2, got {tuple(U.shape)}"
        )
    if finite:
        checks.finite_tensor(name, U)
    return N


def _plaquettes(U: torch.Tensor) -> torch.Tensor:
    U0, U1 = U[:, 0], U[:, 1]  # (B, L0, L1, N, N)
    return U0 @ shift(U1, 0) @ dagger(shift(U0, 1)) @ dagger(U1)


def sun_plaquettes(U: torch.Tensor) -> torch.Tensor:
    """Plaquette matrices ``U_P(x)`` with lower-left corner ``x``: ``(B, L0, L1, N, N)``.

    Raises:
        TypeError, ValueError: for links that :func:`check_sun_links` refuses.
    """
    check_sun_links(U)
    return _plaquettes(U)


def _staples(U: torch.Tensor, mu: int) -> torch.Tensor:
    nu = 1 - mu
    Umu, Unu = U[:, mu], U[:, nu]  # (B, L0, L1, N, N)
    Unu_xmu = shift(Unu, mu)  # U_ν(x + mû)
    forward = Unu_xmu @ dagger(shift(Umu, nu)) @ dagger(Unu)
    # U_ν(x + mû - ν̂)† U_mu(x - ν̂)† U_ν(x - ν̂)
    backward = dagger(shift(Unu_xmu, nu, -1)) @ dagger(shift(Umu, nu, -1)) @ shift(Unu, nu, -1)
    return forward + backward


def sun_staples(U: torch.Tensor, mu: int) -> torch.Tensor:
    """Staple sums ``A_mu(x)`` of the links in direction ``mu``: ``(B, L0, L1, N, N)``.

    ``Re tr[U_mu(x) A_mu(x)]`` is the sum of ``Re tr U_P`` over the two plaquettes that
    contain ``U_mu(x)`` (module docstring).

    Raises:
        TypeError, ValueError: for links that :func:`check_sun_links` refuses, or a ``mu``
            that is not the integer 0 or 1.
    """
    check_sun_links(U)
    mu = checks.integer("mu", mu, low=0, high=1)
    return _staples(U, mu)


def sun_gauge_transform(U: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Apply ``U_mu(x) → Ω(x) U_mu(x) Ω(x + mû)†``.

    Args:
        U: links ``(B, 2, L0, L1, N, N)``.
        omega: SU(N) site matrices ``(B, L0, L1, N, N)``, or ``(L0, L1, N, N)`` for one
            transformation of the whole batch; same dtype and device as ``U``.

    Raises:
        TypeError: if ``U`` or ``omega`` is not a tensor.
        ValueError: for links that :func:`check_sun_links` refuses, or an ``omega`` of
            another dtype, device or lattice than ``U``.
    """
    check_sun_links(U)
    checks.tensor("omega", omega, complex_only=True, dtype=U.dtype, device=U.device, finite=False)
    check_matrices(omega, "omega")
    site = tuple(U.shape[2:4]) + tuple(U.shape[-2:])
    if tuple(omega.shape) == site:
        omega = omega.unsqueeze(0)
    if omega.dim() != 5 or tuple(omega.shape[1:]) != site or omega.shape[0] not in (1, U.shape[0]):
        raise ValueError(
            f"omega must have shape (B, L0, L1, N, N) = {(U.shape[0], *site)} or "
            f"(L0, L1, N, N), got {tuple(omega.shape)}"
        )
    omega = omega.expand(U.shape[0], *site)
    return torch.stack(
        [omega @ U[:, mu] @ dagger(shift(omega, mu)) for mu in (0, 1)], dim=1
    )  # (B, 2, L0, L1, N, N)


def random_sun_gauge_transform(
    U: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gauge-transform every configuration with independent Haar-random ``Ω(x)``.

    Raises:
        TypeError: for links that are not a tensor, a ``generator`` that is not a
            ``torch.Generator``.
        ValueError: for links that :func:`check_sun_links` refuses, a generator on another
            device type than ``U``.
    """
    N = check_sun_links(U)
    check_generator(generator, U.device)
    B, _, L0, L1 = U.shape[:4]
    omega = haar((B, L0, L1), N, dtype=U.dtype, device=U.device, generator=generator)
    return sun_gauge_transform(U, omega)


class SUNWilsonAction:
    """Wilson gauge action ``S(U) = -(β/N) Σ_x Re tr U_P(x)`` for 2D SU(N) links.

    Args:
        beta: inverse coupling ``β >= 0`` (finite).
        N: the gauge group SU(N), ``N >= 2``; links must have matching matrix size.

    Raises:
        TypeError: if ``beta`` is not a real number or ``N`` not an integer.
        ValueError: for a negative or non-finite ``beta``, ``N < 2``.

    ``action(U)`` and :meth:`force` take links that :func:`check_sun_links` accepts, of
    this ``N`` (the values are not checked, see :mod:`lqft_lab.actions`).

    The exact finite-volume plaquette of this action (character expansion) is
    :func:`lqft_lab.exact.sun.sun_plaquette`.

    Example:
        >>> action = SUNWilsonAction(beta=4.0, N=3)
        >>> U = torch.eye(3, dtype=torch.complex128).expand(2, 2, 4, 4, 3, 3)
        >>> action(U)   # cold start: S = -β V
        tensor([-64., -64.], dtype=torch.float64)
    """

    def __init__(self, beta: float, N: int):
        self.beta = checks.real("beta", beta, low=0)
        self.N = checks.integer("N", N, low=2)

    def __repr__(self) -> str:
        return f"SUNWilsonAction(beta={self.beta}, N={self.N})"

    def params(self) -> dict[str, float]:
        """Couplings as a plain dict (stored in checkpoints and records)."""
        return {"beta": self.beta, "N": self.N}

    def _check(self, U: torch.Tensor) -> None:
        N = check_sun_links(U)
        if N != self.N:
            raise ValueError(
                f"U must hold SU({self.N}) links for this action, got {N}x{N} matrices"
            )

    def __call__(self, U: torch.Tensor) -> torch.Tensor:
        self._check(U)
        tr = torch.diagonal(_plaquettes(U), dim1=-2, dim2=-1).sum(-1).real  # (B, L0, L1)
        return -(self.beta / self.N) * tr.flatten(1).sum(dim=1)

    def force(self, U: torch.Tensor) -> torch.Tensor:
        """su(N)-valued force ``F_mu(x) = -(β/2N) P_su(N)[U_mu(x) A_mu(x)]``, shape of ``U``.

        ``dS/dt = 2 Re tr(F X)`` for ``U → e^{tX} U`` (module docstring); the HMC momentum
        obeys ``dX/dt = F``.
        """
        self._check(U)
        UA = torch.stack([U[:, mu] @ _staples(U, mu) for mu in (0, 1)], dim=1)
        return -(self.beta / (2 * self.N)) * project_algebra(UA)


class SingleMatrixAction:
    """Class-function action of one SU(N) matrix: ``S(U) = -(β/N) Re tr Σ_k c_k U^k``.

    The single-matrix targets of Boyda et al. (arXiv:2008.05456, eq. (22)): ``β = 9`` with
    ``c = (0.98, -0.63, -0.21)``, ``(0.17, -0.65, 1.22)`` or ``(1, 0, 0)``. ``S`` depends on
    ``U`` only through its eigenphases, ``Re tr U^k = Σ_j cos(k θ_j)``; the exact
    normalisation and moments are in :mod:`lqft_lab.exact.sun` (``single_matrix_*``).

    Args:
        beta: overall coupling ``β >= 0`` (finite).
        coeffs: ``(c_1, c_2, …)``, finite reals, at least one.
        N: the group SU(N), ``N >= 2``.

    Raises:
        TypeError: for a ``beta`` or ``coeffs`` entry that is not a real number, ``coeffs``
            that is not a sequence, an ``N`` that is not an integer.
        ValueError: for a negative or non-finite ``beta`` or entry, empty ``coeffs``,
            ``N < 2``.

    ``action(U)`` takes complex64/complex128 matrices ``(B, N, N)`` and returns ``(B,)``;
    :meth:`from_eigenphases` takes real eigenphases ``(..., N)``.
    """

    def __init__(self, beta: float, coeffs, N: int):
        beta = checks.real("beta", beta, low=0)
        if isinstance(coeffs, torch.Tensor):
            coeffs = coeffs.tolist()
        if isinstance(coeffs, str | bytes) or not hasattr(coeffs, "__iter__"):
            raise TypeError(
                f"coeffs must be a non-empty sequence of finite numbers (c_1, c_2, …), "
                f"got {coeffs!r}"
            )
        coeffs = tuple(checks.real(f"coeffs[{k}]", c) for k, c in enumerate(coeffs))
        if not coeffs:
            raise ValueError(f"coeffs must be a non-empty sequence of finite numbers, got {coeffs}")
        self.beta, self.coeffs, self.N = beta, coeffs, checks.integer("N", N, low=2)

    def __repr__(self) -> str:
        return f"SingleMatrixAction(beta={self.beta}, coeffs={self.coeffs}, N={self.N})"

    def params(self) -> dict:
        """Couplings as a plain dict (stored in checkpoints and records)."""
        return {"beta": self.beta, "coeffs": list(self.coeffs), "N": self.N}

    def from_eigenphases(self, theta: torch.Tensor) -> torch.Tensor:
        """``S`` from eigenphases ``(..., N) -> (...)``.

        Raises:
            TypeError: if ``theta`` is not a tensor.
            ValueError: if it is not float32/float64 or its last axis is not ``N``.
        """
        checks.tensor("theta", theta, finite=False)
        if theta.dim() < 1 or theta.shape[-1] != self.N:
            raise ValueError(
                f"theta must hold SU({self.N}) eigenphases of shape (..., {self.N}), "
                f"got {tuple(theta.shape)}"
            )
        k = torch.arange(1, len(self.coeffs) + 1, dtype=theta.dtype, device=theta.device)
        c = torch.tensor(self.coeffs, dtype=theta.dtype, device=theta.device)
        re_tr = torch.cos(theta[..., None, :] * k[:, None]).sum(-1)  # (..., K): Re tr U^k
        return -(self.beta / self.N) * (re_tr * c).sum(-1)

    def __call__(self, U: torch.Tensor) -> torch.Tensor:
        checks.tensor("U", U, allow_complex=True, finite=False)  # the half-precision message
        N = check_matrices(U)
        if U.dim() != 3 or N != self.N or U.shape[0] == 0:
            raise ValueError(
                f"U must hold SU({self.N}) matrices of shape (B, {self.N}, {self.N}) with "
                "B >= 1, "
                f"got {tuple(U.shape)}"
            )
        total = torch.zeros(U.shape[0], dtype=U.real.dtype, device=U.device)
        power = U
        for c in self.coeffs:
            total = total + c * torch.diagonal(power, dim1=-2, dim2=-1).sum(-1).real
            power = power @ U
        return -(self.beta / self.N) * total
