"""The two-flavour Schwinger model with the exact fermion determinant, for small lattices.

Integrating out Nf = 2 degenerate Wilson fermions leaves the gauge field with the weight
``(det D)² e^{-S_g} = |det D|² e^{-S_g}`` (``det D`` is real by γ5-hermiticity, so its square
is ``|det D|²``; see :mod:`lqft_lab.actions.wilson_dirac` for ``D``'s conventions). The
effective action on the link angles ``theta (B, 2, L0, L1)`` is therefore

    S(θ) = S_g(θ) - 2 log |det D_κ(θ)|,    S_g = -β Σ_x cos θ_P(x),

with ``log |det D|`` from ``slogdet`` of the dense even/odd Schur complement (never
``logdet``, which is NaN once a real eigenvalue of ``D`` crosses zero). Its cost is that of a
dense determinant of size ``V = L0 L1``: milliseconds at L = 8, tenths of a second at L = 16
on a CPU. Beyond that, pseudofermions replace the determinant.

The force ``-dS/dθ`` comes from autograd through ``slogdet`` (:func:`autograd_force`); at
``κ = 0`` the action is the pure gauge :class:`~lqft_lab.actions.U1WilsonAction`.

References:
    M. S. Albergo et al., "Flow-based sampling in the lattice Schwinger model at
    criticality", arXiv:2202.11712;
    M. S. Albergo et al., "Flow-based sampling for fermionic lattice field theories",
    arXiv:2106.05934.
"""

from __future__ import annotations

import torch

from .base import autograd_force
from .u1 import U1WilsonAction, check_links
from .wilson_dirac import WilsonDirac

__all__ = ["SchwingerAction"]


class SchwingerAction:
    """``S(θ) = -β Σ cos θ_P - 2 log|det D_κ(θ)|``: U(1) gauge links with two flavours of
    Wilson fermions integrated out exactly.

    Args:
        beta: gauge coupling, finite and ``>= 0``.
        kappa: hopping parameter, ``0 <= κ < 1`` (critical near 0.2773 at β = 2).
        antiperiodic: antiperiodic fermion boundary conditions in time (the default).

    Example:
        >>> action = SchwingerAction(beta=2.0, kappa=0.2)
        >>> action(torch.zeros(3, 2, 4, 4, dtype=torch.float64)).shape
        torch.Size([3])
    """

    def __init__(self, beta: float, kappa: float, antiperiodic: bool = True):
        self.gauge = U1WilsonAction(beta)
        self.dirac = WilsonDirac(kappa, antiperiodic=antiperiodic)

    @property
    def beta(self) -> float:
        return self.gauge.beta

    @property
    def kappa(self) -> float:
        return self.dirac.kappa

    def __repr__(self) -> str:
        return f"SchwingerAction(beta={self.beta}, kappa={self.kappa}, Nf=2, exact determinant)"

    def params(self) -> dict[str, float | bool]:
        """Couplings as a plain dict (stored in checkpoints and records)."""
        return {"beta": self.beta, "kappa": self.kappa, "antiperiodic": self.dirac.antiperiodic}

    def log_det(self, theta: torch.Tensor) -> torch.Tensor:
        """``log (det D)² = 2 log|det D|`` per configuration, ``(B,)``."""
        return 2.0 * self.dirac.log_abs_det(theta)

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """``S(θ)`` of shape ``(B,)`` for links ``(B, 2, L0, L1)`` (float64 recommended: the
        determinant enters an accept/reject)."""
        check_links(theta)
        return self.gauge(theta) - self.log_det(theta)

    def force(self, theta: torch.Tensor) -> torch.Tensor:
        """``-dS/dθ``, shape of ``theta``, by autograd through ``slogdet``."""
        return autograd_force(self, theta)
