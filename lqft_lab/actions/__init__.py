"""Lattice actions.

Every action is a small object with its couplings as attributes and promises:
``action(x) -> S`` of shape ``(B,)`` for a batched field ``(B, *lattice)``, and
``action.force(x) -> -dS/dx`` with the shape of ``x``. ``logp = -S`` up to ``log Z``.
U(1) gauge fields are link angles ``(B, 2, L0, L1)`` (:mod:`lqft_lab.actions.u1`); SU(N)
gauge fields are complex links ``(B, 2, L0, L1, N, N)`` (:mod:`lqft_lab.actions.sun`), whose
``force`` is su(N)-valued (see there).

Fermions (the Schwinger model, notebook 04): :class:`WilsonDirac` is an operator, not an
action (``apply(theta, psi)``, fields ``(B, L0, L1, 2)`` complex);
:class:`SchwingerAction` is ``S_g - 2 log|det D|`` on links and keeps the action contract;
:class:`PseudofermionAction` takes the pseudofermion too, ``action(theta, phi) -> (B,)`` and
``action.force(theta, phi)``, with :func:`conjugate_gradient` for ``(D†D)^{-1}``.

Bad input. Constructors check their couplings (finite reals in range, integer ``N``) and
raise ``TypeError``/``ValueError`` naming the argument. ``action(x)``, ``action.force(x)``
and the link functions check the field's kind, dtype and shape — cheap Python checks, no
device sync — and refuse half precision with the one message of :mod:`lqft_lab.checks`
(``φ⁴`` and ``e^{β cos θ}`` terms overflow float16). They do *not* check that the values
are finite: actions run inside HMC's and the flows' inner loops, where such a check costs a
GPU sync per call. Finiteness is checked once where a field enters: the samplers' ``init``
(``check_links(..., finite=True)``, ``check_sun_links(..., finite=True)``,
``lattice.check_field(..., finite=True)``) and the observables; a NaN handed to an action
directly comes back as NaN.
"""

from .base import autograd_force
from .cg import CGNotConverged, CGResult, conjugate_gradient
from .phi4 import Phi4Action
from .pseudofermion import PseudofermionAction
from .schwinger import SchwingerAction
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
    U1DefectAction,
    U1WilsonAction,
    check_links,
    gauge_transform,
    plaquette_angles,
    random_gauge_transform,
    wrap_angle,
)
from .wilson_dirac import (
    GAMMA,
    WilsonDirac,
    check_fermion,
    gamma_matrices,
    kappa_from_mass,
    mass_from_kappa,
)

__all__ = [
    "Phi4Action",
    "SingleMatrixAction",
    "SUNWilsonAction",
    "U1WilsonAction",
    "U1DefectAction",
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
    "WilsonDirac",
    "GAMMA",
    "gamma_matrices",
    "kappa_from_mass",
    "mass_from_kappa",
    "check_fermion",
    "SchwingerAction",
    "conjugate_gradient",
    "CGResult",
    "CGNotConverged",
    "PseudofermionAction",
]
