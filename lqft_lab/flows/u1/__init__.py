"""Gauge-equivariant flows for 2D U(1) link angles: plaquette couplings with stripe masks.

Contract (as for every flow, see :mod:`lqft_lab.flows.base`): a layer maps base → field,
``forward(z) -> (x, logJ)`` and ``reverse(x) -> (z, logJ_inv)``, on link angles
``(B, 2, L0, L1)`` in the conventions of :mod:`lqft_lab.actions.u1`, with ``logJ`` of shape
``(B,)``. Angles are defined modulo ``2π`` and are not wrapped on output (as in
:mod:`lqft_lab.actions.u1`): a round trip returns the input modulo ``2π``, and every density
is ``2π``-periodic in every link. Every layer reads the links only through plaquettes, so it
commutes with every gauge transformation and its ``logJ`` is gauge invariant. Every kernel is
a circle map, ``kernel(x, params) -> (h(x), log h'(x))`` and ``kernel.inverse(y, params) ->
(h⁻¹(y), -log h'(h⁻¹(y)))``, elementwise.

The pieces, each explained in its module:

- :mod:`~lqft_lab.flows.u1.masks`: the stripes one layer moves, reads and disturbs, and the
  order of the layers (:func:`stripe_offset`, :class:`U1Masks`, :func:`u1_masks`).
- :mod:`~lqft_lab.flows.u1.kernels`: the circle maps (:class:`NCPKernel`; the spline is
  :class:`~lqft_lab.flows.splines.CircularSplineKernel`).
- :mod:`~lqft_lab.flows.u1.couplings`: the plaquette coupling, optionally conditioned on
  2×1 loops (:class:`GaugeEquivariantCoupling`).
- :mod:`~lqft_lab.flows.u1.line_rotations`: collective turns of whole lines of links
  (:class:`LineRotationCoupling`).
- :mod:`~lqft_lab.flows.u1.builder`: the tutorial's flow and its checkpointed architecture
  (:class:`U1FlowConfig`, :func:`build_u1_flow`, :func:`add_loops_2x1`,
  :func:`add_line_rotations`, :func:`add_context`).
- :mod:`~lqft_lab.flows.u1.linearized`: the linearised map between neighbouring couplings,
  gradients of small Wilson loops with a closed-form divergence (:class:`LoopField`,
  :class:`SteinFeatures`), for the Stein estimator of ``d⟨O⟩/dβ``.
"""

from .builder import U1FlowConfig, add_context, add_line_rotations, add_loops_2x1, build_u1_flow
from .couplings import GaugeEquivariantCoupling
from .kernels import NCPKernel
from .line_rotations import LineRotationCoupling
from .linearized import LoopField, SteinFeatures
from .masks import U1Masks, stripe_offset, u1_masks

__all__ = [
    "U1Masks",
    "u1_masks",
    "stripe_offset",
    "NCPKernel",
    "LoopField",
    "SteinFeatures",
    "GaugeEquivariantCoupling",
    "U1FlowConfig",
    "build_u1_flow",
    "add_loops_2x1",
    "LineRotationCoupling",
    "add_line_rotations",
    "add_context",
]
