"""Kernels: circle diffeomorphisms that a U(1) coupling applies to each angle it moves.

**Contract.** A kernel is a circle map ``(-π, π) → (-π, π)`` lifted to the real line,
``h(x + 2π) = h(x) + 2π``: ``kernel(x, params) -> (h(x), log h'(x))`` and
``kernel.inverse(y, params) -> (h⁻¹(y), -log h'(h⁻¹(y)))``, elementwise, ``params`` of shape
``(B, kernel.n_params, ...)`` from the conditioner. :class:`NCPKernel` is the mixture of
non-compact projections of arXiv:2002.02428 and arXiv:2003.06413;
:class:`~lqft_lab.flows.splines.CircularSplineKernel` (in :mod:`lqft_lab.flows.splines`) the
circular rational-quadratic spline of arXiv:2002.02428 (after arXiv:1906.04032). ``KERNELS``
names the two, as :class:`~lqft_lab.flows.u1.U1FlowConfig` ``.kernel`` selects them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ... import checks
from ...actions.u1 import wrap_angle
from .. import _args

__all__ = ["KERNELS", "NCPKernel"]

KERNELS = ("ncp", "spline")  # NCPKernel, CircularSplineKernel

_SOFTPLUS_ONE = math.log(math.e - 1)  # softplus(_SOFTPLUS_ONE) = 1: a zero net output is s = 1


def _bisect(
    f: Callable[[torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> torch.Tensor:
    """Solve ``f(x) = target`` for an increasing ``f`` with ``f(±π) = ±π``, elementwise.

    ``⌈log2(2π / eps)⌉ + 1`` halvings of ``[-π, π]`` (56 in float64, 27 in float32) shrink
    the bracket below the spacing of floats near ``π``: the root to the dtype's precision.
    ``lo``, ``hi``: a tighter bracket to start from (elementwise; default ``∓π``).
    """
    lo = torch.full_like(target, -math.pi) if lo is None else lo
    hi = torch.full_like(target, math.pi) if hi is None else hi
    n_halvings = math.ceil(math.log2(2 * math.pi / torch.finfo(target.dtype).eps)) + 1
    for _ in range(n_halvings):
        mid = 0.5 * (lo + hi)
        below = f(mid) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _newton_bisect(
    f: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    target: torch.Tensor,
    max_newton: int = 40,
) -> torch.Tensor:
    """Solve ``f(x) = target`` as :func:`_bisect` does, in a handful of steps instead of ~56.

    ``f`` returns ``(h, h')`` of an increasing ``h`` with ``h(±π) = ±π``. Safeguarded Newton
    (Numerical Recipes' ``rtsafe``, vectorised): every iterate tightens the bracket
    ``[lo, hi]`` around the root, and a Newton step that would leave it, or is not finite,
    is replaced by the bracket's midpoint. An element is done when its residual ``h - target``
    or its bracket is below ``4 eps π`` (where ``h'`` is small the residual gets there
    first, where it is large the bracket; a small Newton step alone proves nothing where
    ``h'`` is large far from the root), and then stays put. Near the root Newton doubles
    the correct digits per step: on the reverse pass of a flow far from the identity a layer
    takes 6–13 evaluations where bisection takes 56 in float64. One host synchronisation per
    step checks whether all are done; elements still open after ``max_newton`` steps (a
    pathological map) are finished by bisection of their bracket, to the same precision.
    """
    eps = torch.finfo(target.dtype).eps
    tol = 4 * eps * math.pi
    lo = torch.full_like(target, -math.pi)
    hi = torch.full_like(target, math.pi)
    x = target.clamp(-math.pi, math.pi)  # the identity's root: near it for maps near the identity
    done = torch.zeros_like(target, dtype=torch.bool)
    for _ in range(max_newton):
        h, dh = f(x)
        err = h - target
        below = err < 0
        lo = torch.where(below, x, lo)
        hi = torch.where(below, hi, x)
        newton = x - err / dh
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        new = torch.where(inside, newton, 0.5 * (lo + hi))
        done = done | (err.abs() <= tol) | (hi - lo <= tol)
        x = torch.where(done, x, new)  # a finished element stays put while the others go on
        if bool(done.all()):
            return x
    return torch.where(done, x, _bisect(lambda v: f(v)[0], target, lo, hi))


class NCPKernel(nn.Module):
    """Mixture of non-compact projections with an optional rotation, a circle diffeomorphism.

    One projection (arXiv:2002.02428; arXiv:2003.06413),

        g_s(x) = 2 atan(s tan(x/2))
               = x + 2 atan[(s - 1) sin(x/2) cos(x/2) / (cos²(x/2) + s sin²(x/2))],
        g_s'(x) = s / (cos²(x/2) + s² sin²(x/2)),

    is written in the second form, smooth through ``x = ±π`` and lifted,
    ``g_s(x + 2π) = g_s(x) + 2π``; ``g_s(0) = 0``, ``g_s(±π) = ±π`` and
    ``min(s, 1/s) ≤ g_s' ≤ max(s, 1/s)``. Both denominators are sums of non-negative terms.
    The equivalent full-angle form ``2s / ((1 + s²) + (1 - s²) cos x)`` cancels near
    ``x = ±π``: in float32 ``1 + s²`` rounds to 1 for ``s < 2.4·10⁻⁴``, and the derivative came
    out infinite there, a sharply peaked map that U(1) flows reach at ``β = 6``. The kernel is

        h(x) = Σ_k w_k g_{s_k}(x) + t,     log h'(x) = log Σ_k w_k g_{s_k}'(x),

    with ``s_k = softplus(a_k + log(e - 1))`` (so a zero network output gives ``s = 1``, the
    identity), ``w = softmax(b)`` (only for ``n_mixture > 1``) and the rotation ``t`` read off
    the last channel when ``rotation`` is true.

    The inverse wraps ``y - t`` into ``[-π, π)``, inverts the monotone mixture to the dtype's
    precision by safeguarded Newton steps inside a shrinking bracket (:func:`_newton_bisect`;
    plain bisection, :func:`_bisect`, needs about 8 times as many evaluations), then takes one
    Newton step with the
    parameters attached: it polishes the root and gives the exact first-order gradient
    ``dx = (dy - ∂h) / h'`` of the implicit function, so ``log_prob`` can be trained.

    Args:
        n_mixture: number of projections ``K >= 1``.
        rotation: add a learned rotation ``t``.

    Attributes:
        n_params: channels the conditioner must output per site, ``K + K·[K > 1] + [rotation]``.
    """

    def __init__(self, n_mixture: int = 2, rotation: bool = True):
        super().__init__()
        self.n_mixture = checks.integer("n_mixture", n_mixture, low=1)
        self.rotation = _args.flag("rotation", rotation)
        n_mixture = self.n_mixture
        self.n_params = n_mixture + (n_mixture if n_mixture > 1 else 0) + int(self.rotation)

    def extra_repr(self) -> str:
        return f"n_mixture={self.n_mixture}, rotation={self.rotation}"

    def _unpack(self, params: torch.Tensor):
        K = self.n_mixture
        s = F.softplus(params[:, :K] + _SOFTPLUS_ONE)  # (B, K, ...)
        w = torch.softmax(params[:, K : 2 * K], dim=1) if K > 1 else torch.ones_like(s)
        t = params[:, -1] if self.rotation else torch.zeros_like(params[:, 0])  # (B, ...)
        return s, w, t

    @staticmethod
    def _mixture(x: torch.Tensor, s: torch.Tensor, w: torch.Tensor):
        """``Σ_k w_k g_{s_k}(x)`` and its derivative; ``x: (B, ...)``, ``s, w: (B, K, ...)``."""
        x = x.unsqueeze(1)  # (B, 1, ...)
        ch, sh = torch.cos(0.5 * x), torch.sin(0.5 * x)  # half angles: no cancellation
        ch2, sh2 = ch * ch, sh * sh
        g = x + 2 * torch.atan((s - 1) * sh * ch / (ch2 + s * sh2))
        dg = s / (ch2 + s * s * sh2)
        return (w * g).sum(dim=1), (w * dg).sum(dim=1)

    def forward(self, x: torch.Tensor, params: torch.Tensor):
        """``(h(x), log h'(x))`` for angles ``x`` (any real; ``[-π, π)`` in the layers).

        Raises:
            TypeError, ValueError: ``x`` or ``params`` of the wrong kind, dtype or shape
                (``params: (B, n_params, ...)`` for ``x: (B, ...)``).
        """
        _args.kernel_inputs(self, "x", x, params)
        s, w, t = self._unpack(params)
        h, dh = self._mixture(x, s, w)
        return h + t, torch.log(dh)

    def inverse(self, y: torch.Tensor, params: torch.Tensor):
        """``(x, -log h'(x))`` with ``x ∈ [-π, π]`` and ``h(x) ≡ y (mod 2π)``.

        Raises:
            TypeError, ValueError: as :meth:`forward`, naming ``y``.
        """
        _args.kernel_inputs(self, "y", y, params)
        s, w, t = self._unpack(params)
        u = wrap_angle(y - t)  # the target of the unrotated mixture, in [-π, π)
        with torch.no_grad():
            x0 = _newton_bisect(lambda v: self._mixture(v, s, w), u)
        h, dh = self._mixture(x0, s, w)
        x = x0 + (u - h) / dh  # Newton step: polish and implicit-function gradient
        return x, -torch.log(self._mixture(x, s, w)[1])
