"""The 2D Wilson–Dirac operator on U(1) links: matrix-free, dense, and its even/odd form.

Conventions (``../shared/notes/04-schwinger.md``, all checked numerically in the tests):

- Links are the lab's U(1) angles ``theta`` of shape ``(B, 2, L0, L1)``,
  ``U_mu(x) = exp(i theta_mu(x))``; direction 0 is time, 1 is space.
- Fermion fields are complex ``(B, L0, L1, 2)``: two spin components per site.
- Gamma matrices ``γ0 = σ1``, ``γ1 = σ2``, ``γ5 = -i γ0 γ1 = σ3``.
- Hopping-parameter form (Wilson parameter r = 1), the form every function here uses::

      D ψ(x) = ψ(x) - κ Σ_mu [ (1 - γ_mu) U_mu(x) ψ(x + mû) + (1 + γ_mu) U_mu(x - mû)* ψ(x - mû) ]

  The mass form is ``D_m = D / (2κ)`` with ``κ = 1 / (2 m0 + 4)`` (:func:`kappa_from_mass`,
  :func:`mass_from_kappa`). Expectation values agree; ``log det`` differs by
  ``-2V log 2κ``, which cancels in every ratio the lab computes.
- Boundary conditions: antiperiodic in time (every hop across the time boundary picks up a
  factor -1), periodic in space. The sign lives only here, inside ``D``: never in the gauge
  action, the topological charge or a flow's input.
- ``γ5 D γ5 = D†`` (γ5-hermiticity): ``det D`` is real, the spectrum is closed under complex
  conjugation, and :meth:`WilsonDirac.apply_dagger` is ``γ5 D γ5``.
- Even/odd: with ``e`` the sites where ``x0 + x1`` is even, ``D = [[1, D_eo], [D_oe, 1]]``
  (the hopping term only connects the two parities), so ``det D = det(1 - D_eo D_oe)`` over
  the even sites alone (:meth:`WilsonDirac.apply_schur`). Here the even/odd fields keep the
  full lattice shape with zeros on the other parity: simple and exact, at twice the minimal
  cost.
- Dense matrices index a field by ``((x0 · L1) + x1) · 2 + spin``, i.e. ``psi.reshape(B, -1)``.

The free operator's eigenvalues are ``1 - 2κ Σ cos p_mu ± 2iκ sqrt(Σ sin² p_mu)`` with
``p0 = 2π(n + ½)/L0`` and ``p1 = 2πn/L1`` (:func:`lqft_lab.exact.schwinger.free_spectrum`).

References:
    K. G. Wilson, "Quarks and strings on a lattice" (1975); for the 2D conventions,
    M. S. Albergo et al., "Flow-based sampling for fermionic lattice field theories",
    arXiv:2106.05934, and "Flow-based sampling in the lattice Schwinger model at
    criticality", arXiv:2202.11712.
"""

from __future__ import annotations

import torch

from .. import checks, linalg
from .u1 import check_links

__all__ = [
    "GAMMA",
    "gamma_matrices",
    "kappa_from_mass",
    "mass_from_kappa",
    "check_fermion",
    "WilsonDirac",
]

#: γ0, γ1, γ5 as complex128 2×2 matrices (σ1, σ2, σ3).
GAMMA = torch.tensor(
    [[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=torch.complex128
)


def gamma_matrices(dtype: torch.dtype = torch.complex128, device=None) -> torch.Tensor:
    """``(3, 2, 2)``: ``γ0, γ1, γ5`` on ``device`` in ``dtype``.

    Raises:
        TypeError: for a ``dtype`` that is not a ``torch.dtype``, a ``device`` that is not a
            device name or ``torch.device``.
        ValueError: for a ``dtype`` other than complex64/complex128 (γ1 is imaginary), a
            device that is not available.
    """
    checks.field_dtype("dtype", dtype, allow_complex=True)
    if dtype not in checks.COMPLEX_DTYPES:
        raise ValueError(
            f"dtype must be complex64 or complex128 (γ1 = σ2 is imaginary), got {dtype}"
        )
    if device is not None:
        device = checks.torch_device("device", device)
    return GAMMA.to(dtype=dtype, device=device)


def kappa_from_mass(m0: float) -> float:
    """``κ = 1 / (2 m0 + 4)`` for a bare mass ``m0 > -2``."""
    m0 = checks.real("m0", m0, low=-2, low_open=True)
    return 1.0 / (2.0 * m0 + 4.0)


def mass_from_kappa(kappa: float) -> float:
    """``m0 = 1/(2κ) - 2`` for ``κ > 0``."""
    kappa = checks.positive("kappa", kappa)
    return 0.5 / kappa - 2.0


def check_fermion(psi: torch.Tensor, theta: torch.Tensor, name: str = "psi") -> None:
    """A fermion field fits the links: complex ``(B, L0, L1, 2)`` on their device, with the
    complex dtype of their precision and their batch size (or batch 1 with links of batch 1).

    Raises:
        TypeError: if ``psi`` (or ``theta``) is not a tensor.
        ValueError: for any mismatch, naming ``name``; for links that
            :func:`~lqft_lab.actions.check_links` refuses, naming ``theta``.
    """
    check_links(theta)
    want = torch.complex128 if theta.dtype == torch.float64 else torch.complex64
    checks.tensor(name, psi, complex_only=True, finite=False)
    B, _, L0, L1 = theta.shape
    if psi.shape != (B, L0, L1, 2):
        raise ValueError(
            f"{name} must have shape (B, L0, L1, 2) = {(B, L0, L1, 2)} to fit links of shape "
            f"{tuple(theta.shape)}, got {tuple(psi.shape)}"
        )
    checks.tensor(name, psi, allow_complex=True, dtype=want, device=theta.device, finite=False)


def _spin(gamma: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``γ v`` at every site: ``v (..., 2) -> (..., 2)``."""
    return torch.einsum("ab,...b->...a", gamma, v)


class WilsonDirac:
    """The Wilson–Dirac operator ``D`` (hopping form) at hopping parameter ``kappa``.

    Args:
        kappa: hopping parameter, ``0 <= κ < 1`` (the free critical point is ``κ = 1/4``;
            ``κ = 0`` is the pure gauge theory, ``D = 1``).
        antiperiodic: antiperiodic boundary conditions in time (the default), else periodic.

    Every method takes the links ``theta (B, 2, L0, L1)`` explicitly, so one operator serves
    any batch, lattice, dtype and device: float64 links give complex128 fields, float32 links
    complex64.

    Example:
        >>> D = WilsonDirac(kappa=0.25)
        >>> theta = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
        >>> torch.linalg.eigvals(D.dense(theta)[0]).real.min() > 0
        tensor(True)
    """

    def __init__(self, kappa: float, antiperiodic: bool = True):
        self.kappa = checks.real("kappa", kappa, low=0, high=1, high_open=True)
        self.antiperiodic = checks.boolean("antiperiodic", antiperiodic)

    def __repr__(self) -> str:
        bc = "antiperiodic" if self.antiperiodic else "periodic"
        return f"WilsonDirac(kappa={self.kappa}, {bc} in time)"

    # -- links with the boundary sign ------------------------------------------------------

    def links(self, theta: torch.Tensor) -> torch.Tensor:
        """``U_mu(x)`` as complex ``(B, 2, L0, L1)``, with the time boundary's sign folded into
        the time links on the last time slice (so a hop across it picks up -1 both ways)."""
        U = torch.polar(torch.ones_like(theta), theta)
        if self.antiperiodic:
            sign = torch.ones(theta.shape[2], dtype=theta.dtype, device=theta.device)
            sign[-1] = -1.0
            U = torch.cat([U[:, :1] * sign[:, None], U[:, 1:]], dim=1)
        return U

    # -- matrix-free application -----------------------------------------------------------

    def _hop(self, U: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``Σ_mu [(1 - γ_mu) U_mu(x) ψ(x+mû) + (1 + γ_mu) U_mu(x-mû)* ψ(x-mû)]``.

        The inner loop of CG: plain rolls (``shift`` without its checks) and the spin
        projectors written out, ``γ0 = σ1``, ``γ1 = σ2``.
        """
        f0 = U[:, 0, :, :, None] * torch.roll(psi, -1, 1)  # U_0(x) ψ(x + 0̂)
        b0 = torch.roll(U[:, 0, :, :, None].conj() * psi, 1, 1)  # U_0(x - 0̂)* ψ(x - 0̂)
        f1 = U[:, 1, :, :, None] * torch.roll(psi, -1, 2)  # U_1(x) ψ(x + 1̂)
        b1 = torch.roll(U[:, 1, :, :, None].conj() * psi, 1, 2)  # U_1(x - 1̂)* ψ(x - 1̂)
        # (1 - γ0) f = (f↑ - f↓, f↓ - f↑);  (1 + γ0) b = (b↑ + b↓, b↓ + b↑)
        d0 = (f0[..., 0] - f0[..., 1]) + (b0[..., 0] + b0[..., 1])
        e0 = -(f0[..., 0] - f0[..., 1]) + (b0[..., 0] + b0[..., 1])
        # (1 - γ1) f = (f↑ + i f↓, f↓ - i f↑);  (1 + γ1) b = (b↑ - i b↓, b↓ + i b↑)
        d1 = (f1[..., 0] + 1j * f1[..., 1]) + (b1[..., 0] - 1j * b1[..., 1])
        e1 = (f1[..., 1] - 1j * f1[..., 0]) + (b1[..., 1] + 1j * b1[..., 0])
        return torch.stack([d0 + d1, e0 + e1], dim=-1)

    def apply(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D ψ`` for links ``theta (B, 2, L0, L1)`` and ``psi (B, L0, L1, 2)``.

        Raises:
            TypeError, ValueError: for links :func:`~lqft_lab.actions.check_links` refuses, or
                a ``psi`` that does not fit them (:func:`check_fermion`).
        """
        check_links(theta)
        check_fermion(psi, theta)
        return self._apply(self.links(theta), psi)

    def _apply(self, U: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        return psi - self.kappa * self._hop(U, psi)

    def apply_dagger(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D† ψ = γ5 D γ5 ψ`` (γ5-hermiticity); same arguments as :meth:`apply`."""
        check_links(theta)
        check_fermion(psi, theta)
        return self._apply_dagger(self.links(theta), psi)

    def _apply_dagger(self, U: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        g5 = psi.new_tensor([1.0, -1.0])  # γ5 = diag(1, -1)
        return g5 * self._apply(U, g5 * psi)

    def apply_normal(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``D† D ψ``, the Hermitian positive operator the pseudofermions and CG use."""
        check_links(theta)
        check_fermion(psi, theta)
        U = self.links(theta)
        return self._apply_dagger(U, self._apply(U, psi))

    # -- dense matrices (small lattices) ---------------------------------------------------

    def dense(self, theta: torch.Tensor) -> torch.Tensor:
        """``D`` as dense matrices ``(B, 2V, 2V)`` (``V = L0 L1``), differentiable in ``theta``.

        Built entry by entry (the link phases placed where the hops put them), independently
        of the matrix-free :meth:`apply`, which the tests compare it with. Memory
        ``B · (2V)²`` complex numbers: meant for ``V`` up to a few hundred sites.
        """
        check_links(theta)
        B, _, L0, L1 = theta.shape
        n, device = 2 * L0 * L1, theta.device
        U = self.links(theta)  # (B, 2, L0, L1), boundary sign included
        gamma = GAMMA.to(dtype=U.dtype, device=device)
        eye2 = torch.eye(2, dtype=U.dtype, device=device)
        x0, x1 = torch.meshgrid(
            torch.arange(L0, device=device), torch.arange(L1, device=device), indexing="ij"
        )
        site = (x0 * L1 + x1).flatten()  # (V,)
        ahead = [((x0 + 1) % L0 * L1 + x1).flatten(), (x0 * L1 + (x1 + 1) % L1).flatten()]
        s = torch.arange(2, device=device)
        index, values = [torch.arange(n, device=device) * (n + 1)], [U.new_ones(B, n)]
        for mu in (0, 1):
            Umu = U[:, mu].reshape(B, -1, 1, 1)  # (B, V, 1, 1)
            # forward hop: row (x, s), column (x + mû, t), -κ (1 - γ_mu)[s, t] U_mu(x)
            rows = 2 * site[:, None, None] + s[:, None]
            cols = 2 * ahead[mu][:, None, None] + s
            index.append((rows * n + cols).expand(-1, 2, 2).flatten())
            values.append((-self.kappa * (eye2 - gamma[mu]) * Umu).flatten(1))
            # backward hop: row (x + mû, s), column (x, t), -κ (1 + γ_mu)[s, t] U_mu(x)*
            rows = 2 * ahead[mu][:, None, None] + s[:, None]
            cols = 2 * site[:, None, None] + s
            index.append((rows * n + cols).expand(-1, 2, 2).flatten())
            values.append((-self.kappa * (eye2 + gamma[mu]) * Umu.conj()).flatten(1))
        D = U.new_zeros(B, n * n)
        # a sum, not a scatter: on an extent of 2 the hops to x + mû and x - mû share an entry
        return D.index_add(1, torch.cat(index), torch.cat(values, dim=1)).reshape(B, n, n)

    # -- even/odd (Schur) form -------------------------------------------------------------

    @staticmethod
    def parity_mask(L0: int, L1: int, device=None) -> torch.Tensor:
        """``(L0, L1, 1)`` real mask, 1 on even sites (``x0 + x1`` even)."""
        x0 = torch.arange(L0, device=device)[:, None]
        x1 = torch.arange(L1, device=device)[None, :]
        return ((x0 + x1) % 2 == 0).to(torch.float64)[..., None]

    def _schur(self, U: torch.Tensor, psi_e: torch.Tensor, dagger: bool) -> torch.Tensor:
        even = self.parity_mask(*psi_e.shape[1:3], device=psi_e.device).to(psi_e.real.dtype)
        odd = 1 - even
        if dagger:  # (1 - D_eo D_oe)† = γ5 (1 - D_eo D_oe) γ5, γ5 being site-local
            g5 = psi_e.new_tensor([1.0, -1.0])
            return g5 * self._schur(U, g5 * psi_e, dagger=False)
        psi_e = even * psi_e
        hop_o = odd * (-self.kappa * self._hop(U, psi_e))  # D_oe ψ_e
        hop_e = even * (-self.kappa * self._hop(U, hop_o))  # D_eo D_oe ψ_e
        return psi_e - hop_e

    def apply_schur(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``(1 - D_eo D_oe) ψ_e`` on the even sites (``psi`` full-lattice shaped; its odd
        sites are ignored and the result is zero there)."""
        check_links(theta)
        check_fermion(psi, theta)
        self._check_even(theta)
        return self._schur(self.links(theta), psi, dagger=False)

    def apply_schur_dagger(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """``(1 - D_eo D_oe)† ψ_e``, the adjoint of :meth:`apply_schur`."""
        check_links(theta)
        check_fermion(psi, theta)
        self._check_even(theta)
        return self._schur(self.links(theta), psi, dagger=True)

    @staticmethod
    def _check_even(theta: torch.Tensor) -> None:
        if theta.shape[2] % 2 or theta.shape[3] % 2:
            raise ValueError(
                "the even/odd form needs even lattice extents (on an odd torus a hop can join "
                f"two sites of one parity), got theta of shape {tuple(theta.shape)}"
            )

    def even_sites(self, L0: int, L1: int, device=None) -> torch.Tensor:
        """Boolean ``(2V,)``: which dense indices belong to even sites."""
        return self.parity_mask(L0, L1, device).expand(L0, L1, 2).reshape(-1).bool()

    def dense_schur(self, theta: torch.Tensor) -> torch.Tensor:
        """The even/odd Schur complement ``1 - D_eo D_oe`` as dense ``(B, V, V)`` matrices over
        the even sites' spin components (``V/2`` sites × 2 spins), ordered as in :meth:`dense`.

        Raises:
            ValueError: for odd lattice extents, where the even/odd splitting does not exist.
        """
        check_links(theta)
        self._check_even(theta)
        D = self.dense(theta)
        even = self.even_sites(*theta.shape[2:], device=theta.device)
        D_eo = D[:, even][:, :, ~even]
        D_oe = D[:, ~even][:, :, even]
        eye = torch.eye(D_eo.shape[1], dtype=D.dtype, device=D.device)
        return eye - D_eo @ D_oe

    def log_abs_det(self, theta: torch.Tensor) -> torch.Tensor:
        """``log |det D|`` per configuration, ``(B,)``, from the dense even/odd Schur
        complement (``slogdet``, never ``logdet``: ``det D`` turns negative once a real
        eigenvalue crosses zero). Differentiable in ``theta``."""
        check_links(theta)
        if theta.shape[2] % 2 or theta.shape[3] % 2:  # no even/odd form: the full matrix
            return linalg.slogdet(self.dense(theta)).logabsdet
        return linalg.slogdet(self.dense_schur(theta)).logabsdet
