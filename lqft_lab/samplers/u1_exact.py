"""Exact independent draws of 2D U(1) lattice gauge theory on a periodic lattice.

In two dimensions the Wilson action is a sum over plaquettes, and the plaquettes of a
torus are independent variables but for one constraint: every link sits in two plaquettes
with opposite signs, so ``Σ_P θ_P ≡ 0 (mod 2π)``. Fixing a maximal tree of links to zero
(a complete axial gauge) leaves ``V + 1`` free links, which are in one-to-one
correspondence with ``V - 1`` plaquette angles and the two Polyakov loops through the
origin. The Haar measure of the links becomes the uniform measure of those variables, and

    p(θ) ∝ Π_P exp(β cos θ_P),    the last plaquette fixed by θ_V = -Σ_{P<V} θ_P (mod 2π).

So a draw is: ``V - 1`` independent von Mises plaquettes, the last one from the constraint,
kept with probability ``exp(β (cos θ_V - 1))`` (rejection sampling: the ratio of the
target to the von Mises proposal is ``exp(β cos θ_V)`` up to a constant, at most
``exp(β)``), and two uniform Polyakov loops; the links are then built along the tree and
a uniformly random gauge transformation is applied. For a large lattice ``θ_V`` is nearly
uniform and about ``I_0(β) e^{-β} ≈ 1/√(2πβ)`` of the draws are kept, whatever ``V``.

This is the sampler against which no Markov chain can compete: its draws are independent,
so every observable has τ_int = 1/2. It serves as a reference (tests, and the exact draws
that measure a flow's forward KL divergence), and it is why 2D U(1) is a test bed: in four
dimensions no such construction exists.

References:
    C. Bonati, P. Rossi, arXiv:1901.09830 (the torus solution and its topology);
    D. J. Best, N. I. Fisher, Appl. Statist. 28 (1979) 152 (von Mises draws).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .. import checks
from ..actions.u1 import random_gauge_transform, wrap_angle
from ..exact.u1 import _u1_validate_shape
from ..lattice import check_field, lattice_shape
from .heatbath import sample_von_mises

__all__ = ["sample_u1_exact", "u1_links_from_plaquettes"]


def u1_links_from_plaquettes(
    plaquettes: torch.Tensor, polyakov: torch.Tensor | None = None
) -> torch.Tensor:
    """Links in the complete axial gauge whose plaquette angles are the given ones.

    The tree: ``θ_0(x) = 0`` for ``x_0 < L0 - 1`` and ``θ_1(0, x_1) = 0`` for
    ``x_1 < L1 - 1``. Then ``θ_P(x) = θ_1(x + 0̂) - θ_1(x)`` for ``x_0 < L0 - 1`` fixes the
    direction-1 links by partial sums along direction 0, and the last row of plaquettes
    fixes the differences of the remaining direction-0 links.

    Args:
        plaquettes: angles ``(B, L0, L1)`` with ``Σ_P θ_P ≡ 0 (mod 2π)`` (the last one
            is not read: it is implied by the others).
        polyakov: ``(B, 2)``, the links ``θ_0(L0 - 1, 0)`` and ``θ_1(0, L1 - 1)`` left free
            by the tree (the Polyakov loops through the origin); zeros if ``None``.

    Returns:
        Link angles ``(B, 2, L0, L1)`` in ``[-π, π)``.

    Raises:
        TypeError: if ``plaquettes`` or ``polyakov`` is not a tensor.
        ValueError: for ``plaquettes`` that are not finite float32/float64 ``(B, L0, L1)``
            with extents >= 2, or ``polyakov`` that is not finite ``(B, 2)`` of the same dtype
            and device.
    """
    check_field(plaquettes, ndim=2, name="plaquettes", finite=True)
    B, L0, L1 = plaquettes.shape
    if polyakov is None:
        polyakov = plaquettes.new_zeros(B, 2)
    checks.tensor(
        "polyakov", polyakov, shape=(B, 2), dtype=plaquettes.dtype, device=plaquettes.device
    )
    theta = plaquettes.new_zeros(B, 2, L0, L1)
    first_row = plaquettes.new_zeros(B, L1)
    first_row[:, -1] = polyakov[:, 1]  # θ_1(0, x_1)
    theta[:, 1, 0] = first_row
    theta[:, 1, 1:] = first_row[:, None] + torch.cumsum(plaquettes[:, :-1], dim=1)
    # last row: θ_P(L0-1, x_1) = θ_0(L0-1, x_1) + θ_1(0, x_1) - θ_0(L0-1, x_1+1) - θ_1(L0-1, x_1)
    step = plaquettes[:, -1] - theta[:, 1, 0] + theta[:, 1, -1]  # θ_0(x_1) - θ_0(x_1 + 1)
    before = torch.cat([step.new_zeros(B, 1), torch.cumsum(step[:, :-1], dim=1)], dim=1)
    theta[:, 0, -1] = polyakov[:, :1] - before
    return wrap_angle(theta)


def sample_u1_exact(
    batch_size: int,
    L: int | Sequence[int],
    beta: float,
    generator: torch.Generator | None = None,
    *,
    weights: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``batch_size`` independent exact draws of ``p ∝ exp(β Σ_P w_P cos θ_P)`` (module
    docstring).

    With ``weights`` the plaquettes carry their own couplings ``β w_P``, e.g. the defect
    torus of parallel tempering on boundary conditions
    (:meth:`U1DefectAction.plaquette_weights <lqft_lab.actions.U1DefectAction.plaquette_weights>`):
    the construction is unchanged, since the Haar measure still maps onto independent
    plaquettes and Polyakov loops; each free plaquette is von Mises at its own coupling and
    the last one, ``(L0 - 1, L1 - 1)``, is kept with probability
    ``exp(β w (cos θ_V - 1))``.

    Args:
        batch_size: number of configurations.
        L: lattice extent, or ``(L0, L1)``.
        beta: coupling ``β >= 0``.
        generator: random source, on ``device``.
        weights: ``(L0, L1)`` relative couplings ``w_P >= 0`` (finite); ``None``: all 1.
        dtype, device: of the returned links (the draws are made in float64).

    Returns:
        Link angles ``(batch_size, 2, L0, L1)`` in ``[-π, π)``, in a uniformly random gauge.

    Example:
        >>> theta = sample_u1_exact(1024, 8, 2.0)
        >>> torch.cos(plaquette_angles(theta)).mean()   # exact: u1_plaquette(2.0, 8) = 0.698

    Raises:
        TypeError: for a non-integer ``batch_size`` or extent, a non-number ``beta``, a
            ``dtype`` that is not a ``torch.dtype``, a bad ``device`` or ``generator`` type.
        ValueError: for ``batch_size < 1``, extents below 2 or more than two of them,
            ``beta < 0`` or not finite, a ``dtype`` other than float32/float64 (integer angles
            would be truncated; half precision is refused everywhere), a device that is not
            here, a generator on another device, ``weights`` of another shape, negative or
            not finite.
    """
    batch_size = checks.integer("batch_size", batch_size, low=1)
    shape = lattice_shape(L, dim=2, name="L")
    if len(shape) != 2:
        raise ValueError(f"L must be one extent or two, (L0, L1): a 2D lattice, got {shape}")
    beta, shape = _u1_validate_shape(beta, shape)  # the checks of lqft_lab.exact's U(1) results
    dtype = checks.field_dtype("dtype", dtype)
    device = checks.torch_device("device", device) if device is not None else torch.device("cpu")
    checks.random_generator("generator", generator, device)
    V = shape[0] * shape[1]
    f64 = dict(dtype=torch.float64, device=device)
    if weights is None:
        couplings = torch.full((V,), beta, **f64)
    else:
        checks.tensor("weights", weights, shape=shape)  # refuses NaN and ±inf too
        weights = weights.detach().to(**f64)
        if bool((weights < 0).any()):
            raise ValueError("weights must be >= 0 (relative plaquette couplings)")
        couplings = beta * weights.flatten()
    plaquettes = torch.empty(batch_size, V, **f64)
    pending = torch.arange(batch_size, device=device)
    while len(pending):  # rejection rounds; each keeps at least ~1/sqrt(2πβ_last) of the draws
        n = len(pending)
        free = sample_von_mises(couplings[:-1].expand(n, V - 1), generator=generator)
        last = wrap_angle(-free.sum(dim=1))
        u = torch.rand(n, generator=generator, **f64)
        keep = u < torch.exp(couplings[-1] * (torch.cos(last) - 1))
        plaquettes[pending[keep]] = torch.cat([free, last[:, None]], dim=1)[keep]
        pending = pending[~keep]
    polyakov = (2 * torch.rand(batch_size, 2, generator=generator, **f64) - 1) * math.pi
    theta = u1_links_from_plaquettes(plaquettes.view(batch_size, *shape), polyakov)
    theta = wrap_angle(random_gauge_transform(theta, generator))
    return theta.to(dtype)
