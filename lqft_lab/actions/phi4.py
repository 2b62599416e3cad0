"""Lattice φ⁴ theory in any dimension, in the convention of the 2021 flow tutorial.

    S(φ) = Σ_x [ -2 Σ_μ φ_x φ_{x+μ} + (2d + m²) φ_x² + λ φ_x⁴ ]

with no factors of ½ (Albergo et al., arXiv:2101.08176, eq. (13); the ensembles E1–E5 of
arXiv:1904.12072 reach m_p L ≈ 4 only in this normalisation). The lattice spacing is one
and the boundaries are periodic. For λ = 0 and m² > 0 this is a free field with the
propagator given in :mod:`lqft_lab.exact`; for m² < 0 and λ > 0 the Z₂ symmetry
φ → -φ can break spontaneously.
"""

from __future__ import annotations

import torch

from .. import checks
from ..lattice import shift
from .base import autograd_force, check_lattice_field

__all__ = ["Phi4Action"]


class Phi4Action:
    """φ⁴ action ``S(φ)`` for batched fields ``(B, *lattice)``.

    Args:
        m2: bare mass squared ``m²`` (any finite real number; negative values give a double
            well).
        lam: quartic coupling ``λ >= 0``, finite.

    Raises:
        TypeError: if ``m2`` or ``lam`` is not a real number.
        ValueError: for non-finite couplings, ``lam < 0``, or ``lam = 0`` with ``m2 <= 0``
            (the action is unbounded below).

    ``action(phi)`` and :meth:`force` take a real float32/float64 field ``(B, *lattice)``
    with ``B >= 1`` and extents ``>= 2``, and raise ``TypeError``/``ValueError`` otherwise
    (half precision included: ``φ⁴`` overflows float16 at ``|φ| ≳ 16``). The values are not
    checked (see :mod:`lqft_lab.actions`).

    Example:
        >>> action = Phi4Action(m2=-4.0, lam=8.0)
        >>> action(torch.zeros(3, 8, 8)).shape
        torch.Size([3])

    References:
        M. S. Albergo, G. Kanwar, P. E. Shanahan, arXiv:1904.12072;
        M. S. Albergo et al., arXiv:2101.08176.
    """

    def __init__(self, m2: float, lam: float):
        m2 = checks.real("m2", m2)
        lam = checks.real("lam", lam, low=0)  # λ < 0: unbounded below
        if lam == 0 and m2 <= 0:
            raise ValueError(f"with lam = 0 the action is unbounded unless m2 > 0, got m2={m2}")
        self.m2 = m2
        self.lam = lam

    def __repr__(self) -> str:
        return f"Phi4Action(m2={self.m2}, lam={self.lam})"

    def params(self) -> dict[str, float]:
        """Couplings as a plain dict (stored in checkpoints and records)."""
        return {"m2": self.m2, "lam": self.lam}

    def __call__(self, phi: torch.Tensor) -> torch.Tensor:
        check_lattice_field(phi, "phi")
        dim = phi.dim() - 1
        hop = sum(phi * shift(phi, mu) for mu in range(dim))
        density = -2.0 * hop + (2 * dim + self.m2) * phi**2 + self.lam * phi**4
        return density.flatten(1).sum(dim=1)

    def force(self, phi: torch.Tensor) -> torch.Tensor:
        """``F = -dS/dφ``, analytic (checked against :func:`autograd_force` in the tests)."""
        check_lattice_field(phi, "phi")
        dim = phi.dim() - 1
        nbrs = self.neighbour_sum(phi)
        return 2.0 * nbrs - 2 * (2 * dim + self.m2) * phi - 4 * self.lam * phi**3

    def autograd_force(self, phi: torch.Tensor) -> torch.Tensor:
        """``F = -dS/dφ`` by automatic differentiation (the reference for :meth:`force`)."""
        return autograd_force(self, phi)

    @staticmethod
    def neighbour_sum(phi: torch.Tensor) -> torch.Tensor:
        """``Σ_μ (φ_{x+μ} + φ_{x-μ})`` at every site, shape of ``phi``."""
        dim = phi.dim() - 1
        return sum(shift(phi, mu, +1) + shift(phi, mu, -1) for mu in range(dim))

    def local_action(self, phi: torch.Tensor, nbr_sum: torch.Tensor, dim: int) -> torch.Tensor:
        """The part of ``S`` that depends on one site's value, elementwise.

        ``s(φ_x) = -2 φ_x Σ_μ(φ_{x+μ} + φ_{x-μ}) + (2d + m²) φ_x² + λ φ_x⁴``; changing a
        single site changes ``S`` by ``s(φ'_x) - s(φ_x)``. Used by local Metropolis.
        """
        return -2.0 * phi * nbr_sum + (2 * dim + self.m2) * phi**2 + self.lam * phi**4
