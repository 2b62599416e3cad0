"""Lattice actions.

Every action is a small object with its couplings as attributes and promises:
``action(x) -> S`` of shape ``(B,)`` for a batched field ``(B, *lattice)``, and
``action.force(x) -> -dS/dx`` with the shape of ``x``. ``logp = -S`` up to ``log Z``.
U(1) gauge fields are link angles ``(B, 2, L0, L1)`` (:mod:`lqft_lab.actions.u1`); SU(N)
gauge fields are complex links ``(B, 2, L0, L1, N, N)`` (:mod:`lqft_lab.actions.sun`), whose
``force`` is su(N)-valued (see there).
"""

from .base import autograd_force
from .phi4 import Phi4Action
from .sun import (
    SingleMatrixAction,
    SUNWilsonAction,
    check_sun_links,
    random_sun_gauge_transform,
    sun_gauge_transform,
    sun_plaquettes,
    sun_staples,
)
from .u1 import (
    U1WilsonAction,
    check_links,
    gauge_transform,
    plaquette_angles,
    random_gauge_transform,
    wrap_angle,
)

__all__ = [
    "Phi4Action",
    "SingleMatrixAction",
    "SUNWilsonAction",
    "U1WilsonAction",
    "autograd_force",
    "check_links",
    "check_sun_links",
    "random_sun_gauge_transform",
    "sun_gauge_transform",
    "sun_plaquettes",
    "sun_staples",
    "gauge_transform",
    "plaquette_angles",
    "random_gauge_transform",
    "wrap_angle",
]
