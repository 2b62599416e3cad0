"""Rational-quadratic splines: smooth, exactly invertible bijections of the circle and of [0, 1].

Kernels for flows on compact variables: ``kernel(x, params) -> (h(x), log h'(x))`` and
``kernel.inverse(y, params) -> (x, -log h'(x))``, elementwise, with the parameters per
element from a conditioner. :class:`CircularSplineKernel` maps angles in ``[-π, π)`` (U(1)
plaquette angles in :mod:`lqft_lab.flows.u1`); :class:`IntervalSplineKernel` maps ``[0, 1]``
onto itself with both end points fixed (the cube coordinates of SU(N) eigenphases in
:mod:`lqft_lab.flows.sun`). Unlike the non-compact projections of
:class:`~lqft_lab.flows.u1.NCPKernel` the inverse is in closed form (a quadratic root), so
no numerical inversion is needed.

References:
    C. Durkan et al., "Neural Spline Flows", arXiv:1906.04032 (the rational-quadratic spline).
    D. J. Rezende et al., "Normalizing Flows on Tori and Spheres", arXiv:2002.02428
    (the circular version).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..actions.u1 import wrap_angle
from . import _args

__all__ = ["CircularSplineKernel", "IntervalSplineKernel"]


# ---------------------------------------------------------------------------------------------
# The rational-quadratic segment (arXiv:1906.04032 eqs. (4)-(6) and appendix A), given the
# lower and upper knot values and derivatives of each element's bin.


def _rq_log_derivative(xi, s, d_lo, d_hi):
    one_m = 1 - xi
    denom = s + (d_hi + d_lo - 2 * s) * xi * one_m
    num = s * s * (d_hi * xi * xi + 2 * s * xi * one_m + d_lo * one_m * one_m)
    return torch.log(num) - 2 * torch.log(denom)


def _rq_forward(x, x_lo, x_hi, y_lo, y_hi, d_lo, d_hi):
    """``(h(x), log h'(x))`` inside the bin ``[x_lo, x_hi]``."""
    w, h = x_hi - x_lo, y_hi - y_lo
    s, xi = h / w, (x - x_lo) / w
    denom = s + (d_hi + d_lo - 2 * s) * xi * (1 - xi)
    y = y_lo + h * (s * xi * xi + d_lo * xi * (1 - xi)) / denom
    return y, _rq_log_derivative(xi, s, d_lo, d_hi)


def _rq_inverse(y, y_lo, y_hi, x_lo, x_hi, d_lo, d_hi):
    """``(x, -log h'(x))`` for ``y`` inside the bin ``[y_lo, y_hi]``: the stable quadratic root."""
    w, h = x_hi - x_lo, y_hi - y_lo
    s, dy = h / w, y - y_lo
    curv = d_hi + d_lo - 2 * s
    a = h * (s - d_lo) + dy * curv
    b = h * d_lo - dy * curv
    c = -s * dy
    xi = 2 * c / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))
    return x_lo + xi * w, -_rq_log_derivative(xi, s, d_lo, d_hi)


class CircularSplineKernel(nn.Module):
    """Circular rational-quadratic spline with an optional rotation, a C¹ circle diffeomorphism.

    ``K`` bins partition ``[-π, π]`` in ``x`` and in ``y`` (knots ``(x_k, y_k)``, ``x_0 = y_0 =
    -π``, ``x_K = y_K = π``) with positive knot derivatives ``d_k`` and ``d_K = d_0``, so the
    map and its derivative are continuous through ``±π`` (Rezende et al., arXiv:2002.02428).
    In bin ``k``, with ``w = x_{k+1} - x_k``, ``h = y_{k+1} - y_k``, ``σ = h / w``,
    ``ξ = (x - x_k) / w`` and ``D = σ + (d_{k+1} + d_k - 2σ) ξ(1 - ξ)`` (Durkan et al.,
    arXiv:1906.04032),

        h(x)  = y_k + h [σ ξ² + d_k ξ(1 - ξ)] / D,
        h'(x) = σ² [d_{k+1} ξ² + 2σ ξ(1 - ξ) + d_k (1 - ξ)²] / D²,

    and the inverse is the stable root ``ξ = 2c / (-b - √(b² - 4ac))`` of the quadratic with
    ``a = h(σ - d_k) + Δ (d_{k+1} + d_k - 2σ)``, ``b = h d_k - Δ (d_{k+1} + d_k - 2σ)``,
    ``c = -σ Δ``, ``Δ = y - y_k``: exact, no iteration. Widths and heights are
    ``min + (2π - K min) softmax(·)``, derivatives ``min + softplus(·)`` shifted so that zero
    parameters give the identity; the rotation ``t`` is the last channel. Inputs are wrapped
    into ``[-π, π)`` and the map lifted, ``h(x + 2π) = h(x) + 2π``.

    Args:
        n_bins: number of bins ``K >= 1``.
        rotation: add a learned rotation ``t``.
        min_size: smallest bin width and height, and smallest knot derivative.

    Attributes:
        n_params: channels the conditioner must output per site, ``3K + [rotation]``.
    """

    def __init__(self, n_bins: int = 8, rotation: bool = True, min_size: float = 1e-3):
        super().__init__()
        n_bins = checks.integer("n_bins", n_bins, low=1)
        rotation = _args.flag("rotation", rotation)
        min_size = checks.real("min_size", min_size)
        if not 0 < min_size < min(1.0, 2 * math.pi / n_bins):
            raise ValueError(f"min_size must lie in (0, min(1, 2π/n_bins)), got {min_size}")
        self.n_bins = n_bins
        self.rotation = bool(rotation)
        self.min_size = float(min_size)
        self.n_params = 3 * n_bins + int(self.rotation)
        self._d_shift = math.log(math.expm1(1 - self.min_size))  # zero input -> d = 1

    def extra_repr(self) -> str:
        return f"n_bins={self.n_bins}, rotation={self.rotation}, min_size={self.min_size}"

    def _knots(self, raw: torch.Tensor) -> torch.Tensor:
        """Knot positions ``(B, K + 1, ...)`` from ``K`` raw sizes, ``-π`` to ``π`` exactly."""
        K, m = self.n_bins, self.min_size
        sizes = m + (2 * math.pi - K * m) * torch.softmax(raw, dim=1)  # (B, K, ...)
        knots = F.pad(torch.cumsum(sizes, dim=1), (0, 0) * (raw.dim() - 2) + (1, 0)) - math.pi
        return torch.cat([knots[:, :-1], torch.full_like(knots[:, -1:], math.pi)], dim=1)

    def knots(self, params: torch.Tensor):
        """The spline's knots ``x_k, y_k`` and derivatives ``d_k``, ``(B, K + 1, ...)`` each,
        and the rotation ``t``, ``(B, ...)``, from ``params`` ``(B, n_params, ...)``."""
        K = self.n_bins
        xk, yk = self._knots(params[:, :K]), self._knots(params[:, K : 2 * K])
        d = self.min_size + F.softplus(params[:, 2 * K : 3 * K] + self._d_shift)  # (B, K, ...)
        d = torch.cat([d, d[:, :1]], dim=1)  # (B, K + 1, ...): d_K = d_0 closes the circle
        t = params[:, 3 * K] if self.rotation else torch.zeros_like(params[:, 0])
        return xk, yk, d, t

    @staticmethod
    def _bin(v: torch.Tensor, knots: torch.Tensor, *tables: torch.Tensor):
        """Lower and upper values of each table at the bin of ``v``: ``(B, ...)`` each."""
        k = (v.unsqueeze(1) >= knots[:, 1:-1]).sum(dim=1, keepdim=True)  # (B, 1, ...)
        out = []
        for table in (knots, *tables):
            out += [table.gather(1, k).squeeze(1), table.gather(1, k + 1).squeeze(1)]
        return out

    _log_derivative = staticmethod(_rq_log_derivative)

    def forward(self, x: torch.Tensor, params: torch.Tensor):
        """``(h(x), log h'(x))`` for angles ``x`` (any real; ``[-π, π)`` in the layers).

        Raises:
            TypeError, ValueError: ``x`` or ``params`` of the wrong kind, dtype or shape
                (``params: (B, n_params, ...)`` for ``x: (B, ...)``).
        """
        _args.kernel_inputs(self, "x", x, params)
        xk, yk, d, t = self.knots(params)
        xw = wrap_angle(x)
        y, log_dy = _rq_forward(xw, *self._bin(xw, xk, yk, d))
        return y + (x - xw) + t, log_dy

    def inverse(self, y: torch.Tensor, params: torch.Tensor):
        """``(x, -log h'(x))`` with ``x ∈ [-π, π]`` and ``h(x) ≡ y (mod 2π)``.

        Raises:
            TypeError, ValueError: as :meth:`forward`, naming ``y``.
        """
        _args.kernel_inputs(self, "y", y, params)
        xk, yk, d, t = self.knots(params)
        u = wrap_angle(y - t)
        return _rq_inverse(u, *self._bin(u, yk, xk, d))


class IntervalSplineKernel(nn.Module):
    """Monotone rational-quadratic spline of ``[0, 1]`` onto itself, end points fixed.

    ``K`` bins partition ``[0, 1]`` in ``x`` and in ``y`` (``x_0 = y_0 = 0``, ``x_K = y_K =
    1``), so ``h(0) = 0`` and ``h(1) = 1``: faces of a cube stay in place. The ``K + 1`` knot
    derivatives ``d_k > 0`` are all free, the two at the end points included (Durkan et al.,
    arXiv:1906.04032, without the linear tails). In each bin ``h`` is the segment of
    :class:`CircularSplineKernel`; its inverse is the same closed-form quadratic root.

    Parameters are *channel-last*, ``params: (..., n_params)`` for inputs ``(...)`` (they
    broadcast), unlike the channel-first ``(B, n_params, ...)`` of the lattice kernels: this
    kernel serves small per-matrix conditioners. Widths and heights are
    ``min + (1 - K min) softmax(·)``, derivatives ``min + softplus(·)`` shifted so that zero
    parameters give the identity. Inputs must lie in ``[0, 1]``.

    Args:
        n_bins: number of bins ``K >= 1``.
        min_size: smallest bin width and height, and smallest knot derivative.

    Attributes:
        n_params: parameters per element, ``3K + 1``.

    Example:
        >>> kernel = IntervalSplineKernel(8)
        >>> y, log_dy = kernel(torch.rand(5), torch.zeros(5, kernel.n_params))  # y == x
    """

    def __init__(self, n_bins: int = 8, min_size: float = 1e-3):
        super().__init__()
        n_bins = checks.integer("n_bins", n_bins, low=1)
        min_size = checks.real("min_size", min_size)
        if not 0 < min_size < 1 / n_bins:
            raise ValueError(f"min_size must lie in (0, 1/n_bins), got {min_size}")
        self.n_bins = n_bins
        self.min_size = float(min_size)
        self.n_params = 3 * n_bins + 1
        self._d_shift = math.log(math.expm1(1 - self.min_size))  # zero input -> d = 1

    def extra_repr(self) -> str:
        return f"n_bins={self.n_bins}, min_size={self.min_size}"

    def _edges(self, raw: torch.Tensor) -> torch.Tensor:
        """Knot positions ``(..., K + 1)`` from ``K`` raw sizes, ``0`` to ``1`` exactly."""
        K, m = self.n_bins, self.min_size
        sizes = m + (1 - K * m) * torch.softmax(raw, dim=-1)  # (..., K)
        edges = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))  # (..., K + 1), edges[..., 0] = 0
        return torch.cat([edges[..., :-1], torch.ones_like(edges[..., -1:])], dim=-1)

    def knots(self, params: torch.Tensor):
        """Knots ``x_k, y_k`` and derivatives ``d_k``, ``(..., K + 1)`` each, from ``params``."""
        if params.shape[-1] != self.n_params:
            raise ValueError(
                f"the spline needs {self.n_params} parameters per element (last axis), "
                f"got shape {tuple(params.shape)}"
            )
        K = self.n_bins
        d = self.min_size + F.softplus(params[..., 2 * K :] + self._d_shift)  # (..., K + 1)
        return self._edges(params[..., :K]), self._edges(params[..., K : 2 * K]), d

    @staticmethod
    def _bin(v: torch.Tensor, knots: torch.Tensor, *tables: torch.Tensor):
        """Lower and upper values of each table at the bin of ``v``: ``(...)`` each."""
        k = (v.unsqueeze(-1) >= knots[..., 1:-1]).sum(dim=-1, keepdim=True)  # (..., 1)
        out = []
        for table in (knots, *tables):
            out += [table.gather(-1, k).squeeze(-1), table.gather(-1, k + 1).squeeze(-1)]
        return out

    def forward(self, x: torch.Tensor, params: torch.Tensor):
        """``(h(x), log h'(x))`` for ``x`` in ``[0, 1]``, shape ``(...)``.

        Raises:
            TypeError, ValueError: ``x`` or ``params`` of the wrong kind or dtype, or
                ``params`` not of shape ``(..., n_params)`` broadcasting to ``x``.
        """
        _args.kernel_inputs(self, "x", x, params, channel_last=True)
        xk, yk, d = (t.expand(*x.shape, -1) for t in self.knots(params))
        return _rq_forward(x, *self._bin(x, xk, yk, d))

    def inverse(self, y: torch.Tensor, params: torch.Tensor):
        """``(x, -log h'(x))`` with ``h(x) = y`` for ``y`` in ``[0, 1]``.

        Raises:
            TypeError, ValueError: as :meth:`forward`, naming ``y``.
        """
        _args.kernel_inputs(self, "y", y, params, channel_last=True)
        xk, yk, d = (t.expand(*y.shape, -1) for t in self.knots(params))
        return _rq_inverse(y, *self._bin(y, yk, xk, d))
