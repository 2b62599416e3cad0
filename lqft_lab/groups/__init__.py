"""Compact groups as tensors: the matrix toolkit that gauge actions, samplers and flows share.

* :mod:`.sun`: SU(N) as complex ``(..., N, N)`` batches: Haar sampling, projections onto the
  group and its algebra, the exp map, eigenphases and the Weyl alcove.

U(1) needs no module of its own: its links are real angles ``θ ∈ [-π, π)`` (see
:mod:`lqft_lab.actions.u1`).
"""

from . import sun

__all__ = ["sun"]
