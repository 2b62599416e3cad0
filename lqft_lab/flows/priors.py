"""Base distributions r(z) for flows: each samples `(B, *lattice_shape)` and scores `(B,)`.

``lattice_shape`` is the per-sample shape of the field the prior draws: ``(L0, L1)`` for a
scalar field, ``(2, L0, L1)`` for 2D U(1) link angles, ``(N, N)`` for one SU(N) matrix and
``(2, L0, L1, N, N)`` for 2D SU(N) links. :class:`~lqft_lab.flows.base.FlowModel` reads it to
check the fields it scores.

Compact fields (U(1) angles, SU(N) matrices) are drawn from their Haar measure. For SU(N) the
density is taken *with respect to* normalised Haar measure, so the Haar priors score 0 and a
flow's ``logq`` is its log-density relative to Haar, as the SU(N) flows' ``logJ`` is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .. import checks
from ..exact.free_field import lattice_momentum_squared
from ..groups.sun import haar
from ..lattice import lattice_shape as _lattice_shape

__all__ = [
    "NormalPrior",
    "SpectralNormalPrior",
    "UniformAnglePrior",
    "HaarPrior",
    "HaarLinkPrior",
    "momentum_features",
]


def _extents(lattice_shape) -> tuple[int, ...]:
    return _lattice_shape(lattice_shape, name="lattice_shape")


class _Prior(nn.Module):
    """What every prior checks where it is called: batch sizes, generators, fields."""

    lattice_shape: tuple[int, ...]

    def _batch(self, batch_size, generator, like: torch.Tensor) -> int:
        batch_size = checks.integer("batch_size", batch_size, low=1)
        checks.random_generator("generator", generator, like.device)
        return batch_size

    def _check_z(self, z, complex_field: bool = False) -> None:
        checks.tensor("z", z, complex_only=complex_field, finite=False)
        if z.dim() < 1 or tuple(z.shape[1:]) != tuple(self.lattice_shape):
            raise ValueError(
                f"z must have shape (B, {', '.join(map(str, self.lattice_shape))}), "
                f"got {tuple(z.shape)}"
            )


class NormalPrior(_Prior):
    """Independent Gaussians ``N(0, σ²)`` at every site.

    The device and dtype follow the module (``prior.to(device, dtype)``), through a
    zero-size buffer, so a model moved with ``.to`` samples where it lives.

    Args:
        lattice_shape: lattice extents, e.g. ``(8, 8)``.
        sigma: standard deviation (1 by default, as in arXiv:2101.08176).

    Raises:
        TypeError, ValueError: ``lattice_shape`` not extents >= 2, ``sigma`` not a finite
            real number > 0; at :meth:`sample`, a ``batch_size`` below 1 or a foreign
            ``generator``; at :meth:`log_prob`, a ``z`` not shaped ``(B, *lattice_shape)``.
    """

    def __init__(self, lattice_shape: Sequence[int], sigma: float = 1.0):
        super().__init__()
        self.sigma = checks.positive("sigma", sigma)
        self.lattice_shape = _extents(lattice_shape)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        a = self._anchor
        batch_size = self._batch(batch_size, generator, a)
        z = torch.randn(
            (batch_size, *self.lattice_shape), generator=generator, device=a.device, dtype=a.dtype
        )
        return self.sigma * z

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        self._check_z(z)
        n = math.prod(self.lattice_shape)
        quad = (z / self.sigma).pow(2).flatten(1).sum(dim=1)
        return -0.5 * quad - n * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))


def momentum_features(lattice_shape: Sequence[int]) -> torch.Tensor:
    """``(*lattice, 2)`` lattice-momentum invariants of every Fourier mode, each in ``[0, 1]``.

    With ``p̂_μ = 2 sin(k_μ/2)`` for ``k_μ = 2π n_μ / L_μ``: ``Σ_μ p̂_μ² / (4d)`` (the free
    lattice Laplacian's eigenvalue, scaled) and ``Σ_μ p̂_μ⁴ / (16d)`` (the leading term that
    tells the lattice's axes from its diagonals). Both are even in ``k`` and invariant under
    the lattice's rotations and reflections, so any function of them is too.

    Raises:
        TypeError, ValueError: ``lattice_shape`` is not one or more extents >= 2.
    """
    shape = _extents(lattice_shape)
    d = len(shape)
    # p̂_μ² along each axis, as the exact free-field solution defines it
    axes = [torch.from_numpy(lattice_momentum_squared((n,))) for n in shape]
    grids = torch.meshgrid(*axes, indexing="ij")
    p2 = sum(grids) / (4 * d)
    p4 = sum(g**2 for g in grids) / (16 * d)
    return torch.stack([p2, p4], dim=-1).float()


class SpectralNormalPrior(_Prior):
    """A Gaussian field with a learned, translation-invariant covariance.

    ``z = F⁻¹[exp(a(k)) F[ε]]`` with white noise ``ε ~ N(0, 1)`` at every site: the
    covariance is diagonal in momentum space with variance ``exp(2 a(k))`` per mode. ``a`` is a
    small network of the lattice-momentum invariants (:func:`momentum_features`), so the prior
    respects the lattice's translations, rotations and reflections, and the same weights
    define it at any lattice size (a flow built on it still transfers across volumes).

    Why: a free field is exactly such a Gaussian, with ``exp(-2a) = 2(p̂² + m²)`` in
    :class:`~lqft_lab.actions.Phi4Action`'s normalisation, and any Gaussian prior of this form
    can carry an interacting field's two-point function. Near a critical point that function
    is long-ranged, which local coupling layers build only slowly, layer by layer; with a
    prior that carries it the couplings are left the non-Gaussian rest. (The
    same idea as starting a flow from the free theory, e.g. Gerdes et al., arXiv:2207.00283,
    with the spectrum learned instead of fixed.) The last layer of ``a`` starts at zero, so
    the untrained prior is :class:`NormalPrior`'s ``N(0, 1)``.

    Args:
        lattice_shape: lattice extents, e.g. ``(8, 8)``.
        spectrum: a module mapping ``(..., 2)`` momentum features to ``(..., 1)`` log-scales
            ``a``; ``None`` builds the default MLP ``2 → 16 → 16 → 1`` with tanh.
    """

    def __init__(self, lattice_shape: Sequence[int], spectrum: nn.Module | None = None):
        super().__init__()
        self.lattice_shape = _extents(lattice_shape)
        if spectrum is not None and not isinstance(spectrum, nn.Module):
            raise checks.ArgumentKindError(
                f"spectrum must be a torch.nn.Module or None, got {type(spectrum).__name__}"
            )
        if spectrum is None:
            spectrum = nn.Sequential(
                nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)
            )
            nn.init.zeros_(spectrum[-1].weight)
            nn.init.zeros_(spectrum[-1].bias)
        self.spectrum = spectrum
        # Not persistent: it depends on the lattice size, the weights do not.
        self.register_buffer("features", momentum_features(self.lattice_shape), persistent=False)

    def log_scale(self) -> torch.Tensor:
        """``a(k)`` on the full momentum grid, shape ``lattice_shape``."""
        return self.spectrum(self.features).squeeze(-1)

    def _scale(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(-len(self.lattice_shape), 0))
        return torch.fft.ifftn(torch.fft.fftn(z, dim=dims) * torch.exp(a), dim=dims).real

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        f = self.features
        batch_size = self._batch(batch_size, generator, f)
        eps = torch.randn(
            (batch_size, *self.lattice_shape), generator=generator, device=f.device, dtype=f.dtype
        )
        return self._scale(eps, self.log_scale())

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        self._check_z(z)
        a = self.log_scale()
        eps = self._scale(z, -a)
        n = math.prod(self.lattice_shape)
        quad = eps.pow(2).flatten(1).sum(dim=1)
        return -0.5 * quad - a.sum() - 0.5 * n * math.log(2 * math.pi)


class UniformAnglePrior(_Prior):
    """Independent uniform link angles: the Haar measure of compact U(1) on every link.

    Draws ``(B, d, *lattice)`` angles in ``[-π, π)`` (the range of
    :func:`lqft_lab.actions.u1.wrap_angle`), one link per direction ``mu < d`` per site. The
    density is that of the circle, ``r(z) = (2π)^(-n_links)``, so :meth:`log_prob` is the same
    constant for every input, wrapped or not: angles are only defined modulo ``2π``.

    Device and dtype follow the module, as for :class:`NormalPrior`.

    Args:
        lattice_shape: lattice extents, e.g. ``(8, 8)``; the number of directions ``d`` is its
            length. The ``lattice_shape`` *attribute* is the per-sample field shape
            ``(d, *lattice)``, e.g. ``(2, 8, 8)``, as :class:`FlowModel` expects; the extents
            alone are in ``lattice``.

    Example:
        >>> prior = UniformAnglePrior((8, 8))
        >>> prior.sample(4).shape, prior.lattice_shape
        (torch.Size([4, 2, 8, 8]), (2, 8, 8))
    """

    def __init__(self, lattice_shape: Sequence[int]):
        super().__init__()
        self.lattice = _extents(lattice_shape)
        self.lattice_shape = (len(self.lattice), *self.lattice)
        self.n_links = math.prod(self.lattice_shape)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        a = self._anchor
        batch_size = self._batch(batch_size, generator, a)
        u = torch.rand(
            (batch_size, *self.lattice_shape), generator=generator, device=a.device, dtype=a.dtype
        )
        return 2 * math.pi * u - math.pi

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        self._check_z(z)
        return z.new_full((z.shape[0],), -self.n_links * math.log(2 * math.pi))


_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


class HaarPrior(_Prior):
    """Haar-random SU(N) matrices ``(B, N, N)``, with density 1 with respect to Haar measure.

    Samples with :func:`lqft_lab.groups.sun.haar`. The complex dtype follows the module's real dtype
    through a zero-size buffer: ``complex64`` by default (training), ``complex128`` after
    ``prior.double()`` (exactness checks); the device follows ``prior.to(device)``.
    :meth:`log_prob` is 0 in the real dtype of its input: every SU(N) density in
    :mod:`lqft_lab.flows.sun` is relative to normalised Haar measure.

    Args:
        N: the group SU(N), ``N >= 2``.

    Example:
        >>> prior = HaarPrior(3)
        >>> prior.sample(4).shape, prior.lattice_shape
        (torch.Size([4, 3, 3]), (3, 3))
    """

    def __init__(self, N: int):
        super().__init__()
        self.N = N = checks.integer("N", N, low=2)
        self.lattice_shape = (N, N)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    def extra_repr(self) -> str:
        return f"N={self.N}"

    def _batch_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size,)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        a = self._anchor
        batch_size = self._batch(batch_size, generator, a)
        return haar(
            self._batch_shape(batch_size),
            self.N,
            dtype=_COMPLEX[a.dtype],
            device=a.device,
            generator=generator,
        )

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        self._check_z(z, complex_field=True)
        return z.real.new_zeros(z.shape[0])


class HaarLinkPrior(HaarPrior):
    """Independent Haar-random SU(N) links ``(B, 2, L0, L1, N, N)`` on a 2D lattice.

    The Haar measure of every link, density 1 with respect to it (:class:`HaarPrior`), in the
    link layout of :mod:`lqft_lab.actions.sun`.

    Args:
        lattice_shape: lattice extents ``(L0, L1)``. The ``lattice_shape`` *attribute* is the
            per-sample field shape ``(2, L0, L1, N, N)``; the extents alone are in ``lattice``.
        N: the group SU(N), ``N >= 2``.
    """

    def __init__(self, lattice_shape: Sequence[int], N: int):
        super().__init__(N)
        self.lattice = _extents(lattice_shape)
        if len(self.lattice) != 2:
            raise ValueError(f"SU(N) links are for 2D lattices, got lattice_shape {self.lattice}")
        self.lattice_shape = (2, *self.lattice, self.N, self.N)

    def extra_repr(self) -> str:
        return f"lattice={self.lattice}, N={self.N}"

    def _batch_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, 2, *self.lattice)
