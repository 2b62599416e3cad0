"""Exact SU(N) references: Haar eigenphases, characters, single-matrix targets, 2D Wilson theory.

These are the anchors that SU(N) flows, HMC and heatbath samplers are tested against. Every
function returns float64 NumPy data (complex128 for characters); nothing here is random.
``N >= 2`` is general, but quadratures run over an ``n^{N-1}`` grid, so ``N <= 4`` is cheap.

Bad input raises ``TypeError`` (the wrong kind) or ``ValueError`` (out of range) naming the
argument: ``2 <= N <= 100``, finite ``beta >= 0``, finite ``coeffs``, partitions ``weights``
with ``λ_1 - λ_N <= 1024``, finite eigenphases, 2D lattices ``L`` with integer extents in
``[2, 2**20]``. A call whose quadrature grid would exceed ``2**22`` points (``2**20`` for the
lattice character expansion, which holds its grid whole) is refused before anything is
built, naming what drives the grid (``N``, ``beta``, ``coeffs``, ``L``, ``weights`` or
``n_grid``): large ``N``, ``β`` or coefficients, or large ``β`` on a small torus. Results
accepted are finite: integrals are log-sum-exp streams and lattice sums are ratios
``r_λ = f_λ/(d_λ f_0)`` with ``log f_0`` added in logs.

Conventions. The Haar measure ``dU`` is normalised to one, and a class function depends on
the eigenphases ``θ = (θ_1, …, θ_N)`` only, with ``Σ_j θ_j = 0 (mod 2π)``. Arrays of
eigenphases always carry all ``N`` of them on the last axis, ``(..., N)``. Weyl's integration
formula (Drouffe & Zuber) reads

    ∫ dU f(U) = (1/N!) ∫_{[0,2π)^{N-1}} dθ_1…dθ_{N-1}/(2π)^{N-1} |Δ(θ)|² f(θ),
    θ_N = -Σ_{i<N} θ_i,   |Δ|² = Π_{i<j} |e^{iθ_i} - e^{iθ_j}|² = Π_{i<j} 4 sin²((θ_i-θ_j)/2).

The integrand is a smooth periodic function of ``θ_1, …, θ_{N-1}``, so the trapezoid rule
with ``n`` points per angle is exact up to aliasing of Fourier modes of order ``n``: every
integral below is spectrally accurate, with grids chosen from Bessel-function tail bounds of
the weight (a term ``x cos kθ`` in the exponent has Fourier weights ``I_m(x)`` at ``km``).

Characters. The irrep with highest weight (partition) ``λ_1 >= … >= λ_N >= 0`` has character
``χ_λ = det[e^{iθ_j(λ_k+N-k)}] / det[e^{iθ_j(N-k)}]`` (Weyl), the Schur polynomial of the
eigenvalues; it is evaluated by the Jacobi–Trudi determinant ``det[h_{λ_i-i+j}]``, which has
no ``0/0`` at coinciding eigenphases (``χ_λ(1) = d_λ``). For SU(N) ``λ`` and
``λ + (q, …, q)`` are the same irrep; the irreps are the partitions with ``λ_N = 0``.

Single-matrix targets (Boyda et al., arXiv:2008.05456):

    p(U) = e^{(β/N) Re tr Σ_k c_k U^k} / Z,   Z = ∫ dU e^{(β/N) Re tr Σ_k c_k U^k},

so ``log p`` is a log density with respect to the normalised Haar measure and ``Z(β=0) = 1``;
the paper's three targets are ``β = 9`` with ``c = (0.98, -0.63, -0.21)``,
``(0.17, -0.65, 1.22)`` and ``(1, 0, 0)``.

2D Wilson theory on a periodic ``L0 × L1`` torus, ``S = -(β/N) Σ_P Re tr U_P``, with
``n_P = L0 L1`` plaquettes and ``Z = ∫ Π_links dU e^{-S}`` (so ``Z(β=0) = 1``). Expand the
plaquette weight in characters (Drouffe & Zuber),

    e^{(β/N) Re tr U} = Σ_λ f_λ(β) χ_λ(U),   f_λ = ∫ dU χ_λ(U) e^{(β/N) Re tr U} >= 0,

(``f_λ`` is real and equal for ``λ`` and its conjugate because ``Re tr U = Re tr U†``). Every
link lies in two plaquettes with opposite orientations and ``∫ dU χ_λ(AU) χ_μ(U†B) =
δ_{λμ} χ_λ(AB)/d_λ``; integrating all links of the torus (Euler characteristic 0) leaves

    Z = Σ_λ d_λ^{0} (f_λ/d_λ)^{n_P} = f_0^{n_P} Σ_λ r_λ^{n_P},   r_λ = f_λ/(d_λ f_0) ∈ [0, 1],
    ⟨(1/N) Re tr U_P⟩ = (1/n_P) ∂_β log Z = Σ_λ r_λ^{n_P-1} r'_λ / Σ_λ r_λ^{n_P},

with ``r'_λ = f'_λ/(d_λ f_0)`` and ``f'_λ = ∫ dU χ_λ (1/N) Re tr U e^{(β/N) Re tr U}``
(differentiated under the integral, not by finite differences). For ``β > 0``,
``r_λ < 1`` for ``λ ≠ 0``, so as ``n_P → ∞`` only the trivial irrep survives:
``⟨(1/N) Re tr U_P⟩ → ∂_β log f_0`` and a Wilson loop of area ``A`` obeys the area law
``⟨(1/N) Re tr W⟩ → (f_F/(N f_0))^A`` (``F`` the fundamental). Independently of the
quadrature, ``f_λ = Σ_{q∈ℤ} det[I_{λ_j+q-j+k}(β/N)]_{j,k=1..N}`` (Bars; Gross & Witten for
U(N), the sum over ``q`` imposing ``det U = 1``); for SU(2) ``f_λ = (λ_1+1) 2 I_{λ_1+1}(β)/β``.
For small ``β``, ``⟨(1/N) Re tr U_P⟩ ≈ (β/N²) ⟨(Re tr U)²⟩_Haar``, i.e. ``β/4`` for SU(2)
(``tr U`` is real) and ``β/(2N²)`` for ``N >= 3``.

References:
    J.-M. Drouffe, J.-B. Zuber, "Strong coupling and mean field methods in lattice gauge
    theories", Phys. Rept. 102 (1983) 1.
    D. J. Gross, E. Witten, "Possible third-order phase transition in the large-N lattice
    gauge theory", Phys. Rev. D 21 (1980) 446.
    I. Bars, "U(N) integral for the generating functional in lattice gauge theory",
    J. Math. Phys. 21 (1980) 2678.
    D. Boyda et al., "Sampling using SU(N) gauge equivariant flows", arXiv:2008.05456.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from numbers import Integral

import numpy as np
import torch
from scipy.special import ive

from .. import checks
from . import _args

__all__ = [
    "vandermonde_sq",
    "weyl_character",
    "irrep_dimension",
    "haar_eigenphase_density",
    "single_matrix_log_z",
    "single_matrix_mean_trace",
    "single_matrix_log_density",
    "single_matrix_eigenphase_histogram",
    "sun_character_coefficient",
    "sun_lattice_log_z",
    "sun_plaquette",
    "sun_plaquette_infinite_volume",
    "sun_wilson_loop_infinite_volume",
]

# Fourier tails of the weight below this fraction of its mean are treated as zero when the
# quadrature grid is chosen; the aliasing error is of that order relative to the integral.
_TAIL = 1e-18
# Irreps with r_λ^{n_P} below this are dropped from the lattice sums (the sums are >= 1).
_IRREP_CUTOFF = 1e-18
# Quadrature points per chunk: bounds memory at a few tens of MB for any grid.
_CHUNK = 1 << 15
# Most points n^{N-1} of one torus quadrature (streamed in chunks: a few seconds at most)
# and of the character-coefficient FFT (held whole: about 100 MB at most). Beyond them a
# call would run for minutes or exhaust memory; it is refused, naming what drives the grid.
_TORUS_POINTS_MAX = 2**22
_FFT_POINTS_MAX = 2**20
# Largest λ_1 of an irrep accepted by the character functions (the tables grow with it).
_WEIGHT_MAX = 1024


# --- input validation ---------------------------------------------------------------------


def _validate_n(N: int) -> int:
    return _args.group_rank(N)


def _validate_beta(beta: float) -> float:
    return _args.coupling("beta", beta)


def _validate_coeffs(coeffs: Sequence[complex]) -> tuple[complex, ...]:
    c = np.asarray(coeffs) if not isinstance(coeffs, torch.Tensor) else coeffs.numpy(force=True)
    if c.ndim != 1 or c.size == 0 or c.dtype == bool or not np.issubdtype(c.dtype, np.number):
        raise ValueError(
            "coeffs must be a non-empty 1D sequence (c_1, c_2, …), c_k multiplying tr U^k, "
            f"got {coeffs!r}"
        )
    c = c.astype(np.complex128)
    if not np.all(np.isfinite(c)):
        raise ValueError(f"coeffs must be finite, got {coeffs!r}")
    return tuple(complex(v) for v in c)


def _validate_n_grid(n_grid: int | None, minimum: int) -> int | None:
    if n_grid is None:
        return None
    return checks.integer("n_grid", n_grid, low=minimum)


def _check_points(N: int, n: float, limit: int, blame: str) -> None:
    """Refuse a quadrature grid of ``n^{N-1}`` points above ``limit``, naming ``blame``."""
    points = float(n) ** (N - 1)
    if not points <= limit:  # also for inf and nan
        raise ValueError(
            f"{blame} need a quadrature grid of about {float(n):.4g}^{N - 1} = {points:.3g} "
            f"points on the SU({N}) torus, more than {limit}: these references are for small "
            "N and moderate beta and coefficients (module docstring)"
        )


def _partition(weights: Sequence[int], N: int) -> tuple[int, ...]:
    """``weights`` as a partition of length ``N`` (a length ``N - 1`` one is padded with 0)."""
    if isinstance(weights, str) or not isinstance(weights, Sequence | np.ndarray):
        raise TypeError(f"weights must be a sequence of integers, got {weights!r}")
    lam = tuple(weights)
    if any(isinstance(v, bool) or not isinstance(v, Integral) for v in lam):
        raise ValueError(f"weights must be a sequence of integers, got {weights!r}")
    lam = tuple(int(v) for v in lam)
    if len(lam) == N - 1:
        lam = (*lam, 0)
    if len(lam) != N:
        raise ValueError(f"SU({N}) weights need {N} or {N - 1} entries, got {len(lam)}: {lam}")
    if lam[-1] < 0 or any(a < b for a, b in itertools.pairwise(lam)):
        raise ValueError(f"weights must be non-increasing and >= 0 (a partition), got {lam}")
    if lam[0] - lam[-1] > _WEIGHT_MAX:
        raise ValueError(
            f"weights must have λ_1 - λ_N <= {_WEIGHT_MAX} (the character tables grow with "
            f"it), got {lam}"
        )
    return lam


def _eigenphases(theta: np.ndarray, N: int | None = None) -> np.ndarray:
    """``theta`` as a finite float64 array ``(..., N)``; torch tensors are checked as fields
    (half precision refused) and copied to the CPU."""
    if isinstance(theta, torch.Tensor):
        theta = checks.tensor("theta", theta).numpy(force=True)
    if np.iscomplexobj(theta):
        raise ValueError("theta must hold real eigenphases, got complex values")
    try:
        theta = np.asarray(theta, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"theta must be an array of real eigenphases, got {theta!r}") from None
    if theta.ndim < 1 or theta.shape[-1] < 2:
        raise ValueError(f"theta must have shape (..., N) with N >= 2, got {theta.shape}")
    if N is not None and theta.shape[-1] != N:
        raise ValueError(f"theta must have shape (..., {N}) for SU({N}), got {theta.shape}")
    if theta.shape[-1] > 100:
        raise ValueError(
            f"theta must hold the N <= 100 eigenphases of SU(N) on its last axis (|Δ|² reaches "
            f"N^N, which overflows float64 beyond N ≈ 143), got shape {theta.shape}"
        )
    if not np.all(np.isfinite(theta)):
        raise ValueError(
            f"theta must be finite, got {int((~np.isfinite(theta)).sum())} NaN or infinite entries"
        )
    return theta


# --- eigenphases, Haar measure, characters ------------------------------------------------


def vandermonde_sq(theta: np.ndarray) -> np.ndarray:
    """``|Δ(θ)|² = Π_{i<j} 4 sin²((θ_i - θ_j)/2)`` for eigenphases ``theta`` of shape ``(..., N)``.

    Returns:
        float64 array of shape ``theta.shape[:-1]``.

    Raises:
        ValueError: if the last axis has fewer than two entries.
    """
    theta = _eigenphases(theta)
    i, j = np.triu_indices(theta.shape[-1], k=1)
    return np.prod(4.0 * np.sin((theta[..., i] - theta[..., j]) / 2) ** 2, axis=-1)


def irrep_dimension(weights: Sequence[int], N: int | None = None) -> int:
    """Dimension ``d_λ = Π_{i<j} (λ_i - λ_j + j - i)/(j - i)`` of an SU(N) irrep (Weyl).

    Args:
        weights: partition ``λ_1 >= … >= λ_N >= 0`` (length ``N``, or ``N - 1`` padded with 0).
        N: the group; defaults to ``len(weights)``.

    Returns:
        ``d_λ`` as an int, e.g. 3, 8 and 10 for the SU(3) irreps ``(1,0,0)``, ``(2,1,0)``,
        ``(3,0,0)``.

    Raises:
        ValueError: for a weight that is not a partition of the right length.
    """
    if N is None:
        if isinstance(weights, str) or not isinstance(weights, Sequence | np.ndarray):
            raise TypeError(f"weights must be a sequence of integers, got {weights!r}")
        if len(weights) < 2:
            raise ValueError(
                f"weights must have N >= 2 entries when N is not given, got {weights!r}"
            )
        N = len(weights)
    N = _validate_n(N)
    lam = _partition(weights, N)
    num = math.prod(lam[i] - lam[j] + j - i for i in range(N) for j in range(i + 1, N))
    den = math.prod(j - i for i in range(N) for j in range(i + 1, N))
    return num // den


def weyl_character(weights: Sequence[int], theta: np.ndarray) -> np.ndarray:
    """Character ``χ_λ(θ) = det[e^{iθ_j(λ_k+N-k)}] / det[e^{iθ_j(N-k)}]`` of the irrep ``λ``.

    Evaluated as the Jacobi–Trudi determinant ``det[h_{λ_i-i+j}(e^{iθ})]`` (the same Schur
    polynomial, free of ``0/0`` at coinciding eigenphases), with the complete homogeneous
    polynomials ``h_m`` built one eigenvalue at a time. For ``Σθ ≠ 0 (mod 2π)`` the result
    is the U(N) character, which carries an extra ``det(U)^{λ_N}``.

    Args:
        weights: partition ``λ`` of length ``N`` or ``N - 1``.
        theta: eigenphases, shape ``(..., N)``.

    Returns:
        complex128 array of shape ``theta.shape[:-1]``; ``χ_λ(0) = d_λ``.

    Raises:
        ValueError: for a bad partition or ``theta`` shape.

    References:
        J.-M. Drouffe, J.-B. Zuber, Phys. Rept. 102 (1983) 1.
    """
    theta = _eigenphases(theta)
    N = theta.shape[-1]
    lam = _partition(weights, N)
    rows = [v for v in lam if v > 0]
    if not rows:
        return np.ones(theta.shape[:-1], dtype=np.complex128)
    ell, m_max = len(rows), rows[0] + len(rows) - 1
    z = np.exp(1j * theta)
    # after pass j, h[..., m] = h_m(z_1..z_j) = h_m(z_1..z_{j-1}) + z_j h_{m-1}(z_1..z_j)
    h = np.zeros((*theta.shape[:-1], m_max + 1), dtype=np.complex128)
    h[..., 0] = 1.0
    for j in range(N):
        for m in range(1, m_max + 1):
            h[..., m] += z[..., j] * h[..., m - 1]
    index = np.array([[rows[i] - i + k for k in range(ell)] for i in range(ell)])  # (ell, ell)
    jt = np.where(index >= 0, h[..., np.clip(index, 0, None)], 0.0)  # (..., ell, ell)
    return np.linalg.det(jt)


def haar_eigenphase_density(theta: np.ndarray) -> np.ndarray:
    """Haar density ``|Δ|² / (N! (2π)^{N-1})`` of ``(θ_1, …, θ_{N-1})`` on ``[0, 2π)^{N-1}``.

    The density is with respect to Lebesgue measure ``dθ_1…dθ_{N-1}`` and integrates to one
    (Weyl's formula, module docstring); ``θ_N`` is the dependent phase.

    Args:
        theta: all ``N`` eigenphases, shape ``(..., N)``, with ``Σ_j θ_j = 0 (mod 2π)``.

    Returns:
        float64 array of shape ``theta.shape[:-1]``.

    Raises:
        ValueError: if the phases do not sum to ``0 (mod 2π)`` (to ``1e-4``): a common slip
            is passing only the ``N - 1`` independent phases.
    """
    theta = _eigenphases(theta)
    N = theta.shape[-1]
    if np.any(np.abs(np.exp(1j * theta.sum(axis=-1)) - 1.0) > 1e-4):
        raise ValueError(
            "SU(N) eigenphases must sum to 0 mod 2π; pass all N phases with "
            f"theta[..., -1] = -theta[..., :-1].sum(-1) (got shape {theta.shape})"
        )
    return vandermonde_sq(theta) / (math.factorial(N) * (2 * math.pi) ** (N - 1))


# --- torus quadrature ---------------------------------------------------------------------


def _bessel_width(x: float) -> int:
    """Smallest ``m`` with ``I_m(x) <= _TAIL · I_0(x)``: the Fourier width of ``e^{x cos θ}``."""
    if x == 0:
        return 1
    # I_m(x)/I_0(x) ≈ e^{-m²/2x} puts the cut near 9.1 √x; 12 √x + 64 is above it for all x
    top = int(12 * math.sqrt(x) + 64)
    while True:
        tail = np.nonzero(ive(np.arange(top), x) <= _TAIL * ive(0, x))[0]
        if tail.size:
            return int(tail[0])
        top *= 2


def _default_n_grid(N: int, beta: float, coeffs: Sequence[complex], extra: int = 0) -> int:
    """Points per angle for the trapezoid rule on the maximal torus.

    In ``θ_1`` (others fixed) the term ``c_k`` of the exponent contributes at most
    ``2 x_k cos(kθ_1 + φ)``, ``x_k = β|c_k|/N`` (from ``e^{ikθ_1}`` and ``e^{-ikθ_N}``), whose
    Fourier width is ``k · _bessel_width(2 x_k)``; widths add under products. ``|Δ|²``
    adds ``N - 1`` and ``extra`` covers polynomial factors (characters, ``tr U``).
    """
    width = sum(k * _bessel_width(2 * beta * abs(c) / N) for k, c in enumerate(coeffs, 1) if c != 0)
    return max(16, width + N + extra + 1)


def _grid_size(
    N: int,
    beta: float,
    coeffs: Sequence[complex],
    *,
    blame: str,
    extra: int = 0,
    factor: int = 1,
    limit: int = _TORUS_POINTS_MAX,
) -> int:
    """``factor`` times :func:`_default_n_grid`, refused (naming ``blame``) above ``limit``
    points: first from the estimate ``9 √x`` of each Bessel width, before any table is built
    (so a huge ``β`` is refused at once), then exactly."""
    with np.errstate(over="ignore"):
        xs = [(k, 2 * beta * abs(c) / N) for k, c in enumerate(coeffs, 1) if c != 0]
        estimate = sum(k * 9 * math.sqrt(x) for k, x in xs) + N + extra + 1
    _check_points(N, factor * max(16, estimate), limit, blame)
    n = factor * _default_n_grid(N, beta, coeffs, extra)
    _check_points(N, n, limit, blame)
    return n


def _torus_chunks(N: int, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(j, theta)``: grid points ``θ_i = 2π j_i/n`` of ``[0, 2π)^{N-1}`` with
    ``θ_N = -Σ θ_i``, as ``theta (P, N)``, and the index ``j (P,)`` of ``θ_1``."""
    total = n ** (N - 1)
    for start in range(0, total, _CHUNK):
        flat = np.arange(start, min(start + _CHUNK, total))
        idx = np.stack(np.unravel_index(flat, (n,) * (N - 1)), axis=-1)  # (P, N-1)
        free = 2 * math.pi / n * idx
        yield idx[:, 0], np.concatenate([free, -free.sum(axis=-1, keepdims=True)], axis=-1)


def _power_sums(theta: np.ndarray, k_max: int) -> np.ndarray:
    """``tr U^k = Σ_j e^{ikθ_j}`` for ``k = 1, …, k_max``, shape ``(P, k_max)``."""
    k = np.arange(1, k_max + 1)
    return np.exp(1j * theta[:, :, None] * k).sum(axis=1)


def _exponent(theta: np.ndarray, beta: float, coeffs: Sequence[complex]) -> np.ndarray:
    """``(β/N) Re Σ_k c_k tr U^k`` at eigenphases ``theta (P, N)``."""
    p = _power_sums(theta, len(coeffs))
    return beta / theta.shape[-1] * (p @ np.asarray(coeffs)).real


def _torus_integrate(
    N: int,
    n: int,
    beta: float,
    coeffs: Sequence[complex],
    reduce: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
) -> tuple[float, np.ndarray]:
    """Streaming log-sum-exp quadrature over the maximal torus.

    ``reduce(j, theta, w)`` gets a chunk and the weights ``w = e^{E - shift}`` of the
    exponent ``E`` (without ``|Δ|²``) and returns sums over the chunk, linear in ``w``.
    Returns ``(shift, total)`` with ``∫ dU g(U) e^{E} = e^{shift} total / (N! n^{N-1})``
    for whatever ``g`` (times ``|Δ|²``) ``reduce`` summed.
    """
    shift, total = -math.inf, None
    for j, theta in _torus_chunks(N, n):
        E = _exponent(theta, beta, coeffs)
        top = float(E.max())
        if top > shift:  # rescale what has been summed so far to the new shift
            if total is not None:
                total = total * math.exp(shift - top)
            shift = top
        part = reduce(j, theta, np.exp(E - shift))
        total = part if total is None else total + part
    return shift, total


def _log_norm(N: int, n: int) -> float:
    return math.lgamma(N + 1) + (N - 1) * math.log(n)


# --- single-matrix targets ----------------------------------------------------------------


def _single_matrix_args(
    N: int, beta: float, coeffs: Sequence[complex], n_grid: int | None = None
) -> tuple[int, float, tuple[complex, ...], int | None]:
    return (
        _validate_n(N),
        _validate_beta(beta),
        _validate_coeffs(coeffs),
        _validate_n_grid(n_grid, 4),
    )


def _single_matrix_grid(N: int, beta: float, c: tuple[complex, ...], n: int | None) -> int:
    """The grid of the single-matrix integrals: ``n_grid`` if given, else the default."""
    if n is not None:
        _check_points(N, n, _TORUS_POINTS_MAX, f"N = {N} and n_grid = {n}")
        return n
    blame = f"N = {N}, beta = {beta} and coeffs = {c}"
    return _grid_size(N, beta, c, extra=1, blame=blame)


@lru_cache(maxsize=64)
def _single_matrix_moments(
    N: int, beta: float, coeffs: tuple[complex, ...], n: int
) -> tuple[float, float]:
    """``(log Z, ⟨(1/N) Re tr U⟩)`` on an ``n``-point grid (validated, hashable input)."""

    def reduce(j, theta, w):
        mw = vandermonde_sq(theta) * w
        trace = np.cos(theta).sum(axis=-1) / N
        return np.array([mw.sum(), (mw * trace).sum()])

    shift, (z, zt) = _torus_integrate(N, n, beta, coeffs, reduce)
    return shift + math.log(z) - _log_norm(N, n), float(zt / z)


def single_matrix_log_z(
    N: int, beta: float, coeffs: Sequence[complex], n_grid: int | None = None
) -> float:
    """``log Z = log ∫ dU e^{(β/N) Re tr Σ_k c_k U^k}`` over SU(N), Haar measure normalised.

    ``Z(β = 0) = 1``; for ``c = (1,)`` and ``N = 2``, ``Z = 2 I_1(β)/β``. Computed by the
    periodic trapezoid rule on the maximal torus (module docstring).

    Args:
        N: the group SU(N), ``N >= 2``.
        beta: ``β >= 0``.
        coeffs: ``(c_1, c_2, …)``, ``c_k`` multiplying ``tr U^k`` (real or complex).
        n_grid: points per eigenphase; the default, from Bessel tail bounds, gives ``log Z``
            to about ``1e-13`` absolute (tested for ``β <= 12``, ``|c_k| <= 2``, ``k <= 3``,
            ``N = 2, 3`` against a doubled grid).

    Returns:
        ``log Z`` as a float.

    Raises:
        TypeError: for arguments of the wrong kind (module docstring).
        ValueError: for ``N`` outside ``[2, 100]``, ``β < 0`` or non-finite, empty or
            non-finite ``coeffs``, ``n_grid < 4``, or a grid above ``2**22`` points.

    References:
        D. Boyda et al., arXiv:2008.05456 (the single-matrix targets).

    Example:
        >>> round(single_matrix_log_z(3, 9.0, (0.98, -0.63, -0.21)), 6)
        3.923858
    """
    N, beta, c, n = _single_matrix_args(N, beta, coeffs, n_grid)
    n = _single_matrix_grid(N, beta, c, n)
    return _single_matrix_moments(N, beta, c, n)[0]


def single_matrix_mean_trace(
    N: int, beta: float, coeffs: Sequence[complex], n_grid: int | None = None
) -> float:
    """``⟨(1/N) Re tr U⟩`` under ``p(U) ∝ e^{(β/N) Re tr Σ_k c_k U^k}``.

    For ``c = (1,)`` this is :func:`sun_plaquette_infinite_volume`. Arguments and accuracy as
    for :func:`single_matrix_log_z`.
    """
    N, beta, c, n = _single_matrix_args(N, beta, coeffs, n_grid)
    n = _single_matrix_grid(N, beta, c, n)
    return _single_matrix_moments(N, beta, c, n)[1]


def single_matrix_log_density(
    theta: np.ndarray, N: int, beta: float, coeffs: Sequence[complex]
) -> np.ndarray:
    """Normalised ``log p(U) = (β/N) Re Σ_k c_k Σ_j e^{ikθ_j} - log Z`` at eigenphases ``θ``.

    The density is with respect to the normalised Haar measure (``∫ dU p(U) = 1``); the
    density of the independent phases ``(θ_1, …, θ_{N-1})`` with respect to Lebesgue
    measure on ``[0, 2π)^{N-1}`` is ``p · haar_eigenphase_density(θ)``.

    Args:
        theta: eigenphases, shape ``(..., N)``.
        N, beta, coeffs: as for :func:`single_matrix_log_z`.

    Returns:
        float64 array of shape ``theta.shape[:-1]``.

    Raises:
        ValueError: for bad parameters or a ``theta`` whose last axis is not ``N``.
    """
    N, beta, c, _ = _single_matrix_args(N, beta, coeffs)
    theta = _eigenphases(theta, N)
    flat = theta.reshape(-1, N)  # (P, N)
    log_z = single_matrix_log_z(N, beta, c)
    return (_exponent(flat, beta, c) - log_z).reshape(theta.shape[:-1])


def single_matrix_eigenphase_histogram(
    N: int, beta: float, coeffs: Sequence[complex], edges: np.ndarray
) -> np.ndarray:
    """Probability that one eigenphase, picked uniformly among the ``N``, falls in each bin.

    Phases are wrapped into ``[-π, π)``; bins (or parts of bins) outside that interval get
    no probability. By the permutation symmetry of the eigenphase density this is the
    marginal ``ρ(φ)`` of ``θ_1``, which is what a histogram of all ``N`` phases of exact
    samples, pooled, estimates. ``ρ`` is sampled at ``n`` points by the torus quadrature
    over the other phases, turned into its Fourier series by an FFT (the grid resolves
    twice the weight's Fourier width, so no mode aliases) and integrated over each bin
    exactly: accurate to about ``1e-14`` per bin.

    Args:
        N, beta, coeffs: as for :func:`single_matrix_log_z`.
        edges: strictly increasing bin edges, shape ``(n_bins + 1,)``, normally covering
            ``[-π, π]`` (then the result sums to one).

    Returns:
        float64 array of shape ``(n_bins,)``.

    Raises:
        ValueError: for bad parameters or edges.

    References:
        D. Boyda et al., arXiv:2008.05456 (eigenvalue densities of the targets).
    """
    N, beta, c, _ = _single_matrix_args(N, beta, coeffs)
    if isinstance(edges, torch.Tensor):
        edges = checks.tensor("edges", edges, finite=False).numpy(force=True)
    try:
        edges = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"edges must be a 1D array of real bin edges, got {edges!r}") from None
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
        raise ValueError(f"edges must be a finite 1D array of >= 2 bin edges, got {edges!r}")
    if np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be strictly increasing")
    n = _grid_size(N, beta, c, factor=2, blame=f"N = {N}, beta = {beta} and coeffs = {c}")

    def reduce(j, theta, w):
        return np.bincount(j, weights=vandermonde_sq(theta) * w, minlength=n)

    _, marginal = _torus_integrate(N, n, beta, c, reduce)  # ρ(2πj/n) up to a constant, (n,)
    a = np.fft.rfft(marginal / marginal.sum())  # ρ(φ) = (1/2π) Σ_m a_m e^{imφ}, a_0 = 1
    m = np.arange(1, a.size - 1)  # drop the Nyquist mode, negligible by the grid choice
    lo, hi = np.clip(edges[:-1], -np.pi, np.pi), np.clip(edges[1:], -np.pi, np.pi)
    # ∫_lo^hi ρ = (hi - lo)/2π + (1/π) Σ_{m>=1} Re[a_m (e^{im hi} - e^{im lo}) / (im)]
    osc = (np.exp(1j * np.outer(hi, m)) - np.exp(1j * np.outer(lo, m))) / (1j * m)  # (B, M)
    return (hi - lo) / (2 * np.pi) + (osc @ a[1:-1]).real / np.pi


# --- 2D Wilson gauge theory ---------------------------------------------------------------


def _lattice_args(N: int, beta: float, L: int | Sequence[int]) -> tuple[int, float, int]:
    N, beta = _validate_n(N), _validate_beta(beta)
    shape = _args.lattice("L", L, dim=2)
    return N, beta, shape[0] * shape[1]


def _coefficients(
    N: int, beta: float, m_max: int, blame: str
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_character_coefficients` after refusing (naming ``blame``) a grid that is too
    large to hold."""
    _grid_size(N, beta, (1.0,), extra=m_max + N, limit=_FFT_POINTS_MAX, blame=blame)
    return _character_coefficients(N, beta, m_max)


def _partitions(N: int, m_max: int) -> list[tuple[int, ...]]:
    """SU(N) irreps with ``λ_1 <= m_max``: partitions of length ``N`` with ``λ_N = 0``."""
    # non-decreasing tuples, reversed; the first is the trivial irrep
    return [
        (*lam[::-1], 0) for lam in itertools.combinations_with_replacement(range(m_max + 1), N - 1)
    ]


@lru_cache(maxsize=32)
def _character_coefficients(
    N: int, beta: float, m_max: int
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """``(log f_0, irreps (R, N), f_λ/f_0 (R,), f'_λ/f_0 (R,))`` for all irreps with
    ``λ_1 <= m_max`` (``irreps[0]`` is the trivial one).

    Each of the ``N!`` terms of ``det[e^{iθ_j l_k}]`` (``l_k = λ_k + N - k``) contributes the
    same to ``(1/N!) ∫ det[e^{iθ_j l_k}] Δ̄ w`` (relabel the phases: ``Δ̄`` is antisymmetric,
    ``w = e^{(β/N) Re tr U}`` symmetric, and both the measure and the grid are invariant), so

        f_λ = ∫ dθ_1…dθ_{N-1}/(2π)^{N-1} e^{i Σ_{i<N} (l_i - l_N) θ_i} Δ̄(θ) w(θ),

    a Fourier coefficient of ``Δ̄ w``: one FFT on the torus grid gives every ``f_λ``.
    """
    n = _default_n_grid(N, beta, (1.0,), extra=m_max + N)
    grid = (n,) * (N - 1)
    free = 2 * math.pi / n * np.indices(grid).reshape(N - 1, -1).T  # (n^{N-1}, N-1)
    theta = np.concatenate([free, -free.sum(axis=-1, keepdims=True)], axis=-1)  # (P, N)
    E = _exponent(theta, beta, (1.0,))
    shift = float(E.max())
    z = np.exp(1j * theta)
    i, j = np.triu_indices(N, k=1)
    delta = np.prod(z[:, i] - z[:, j], axis=-1)  # det[e^{iθ_j(N-k)}], (P,)
    g = np.conj(delta) * np.exp(E - shift)
    trace = np.cos(theta).sum(axis=-1) / N
    spectrum = np.fft.fftn(g.reshape(grid)) / n ** (N - 1)  # mean of g e^{-i k·θ}
    d_spectrum = np.fft.fftn((g * trace).reshape(grid)) / n ** (N - 1)
    irreps = np.array(_partitions(N, m_max))  # (R, N)
    l = irreps + (N - 1 - np.arange(N))  # (R, N)
    index = tuple((l[:, N - 1] - l[:, k]) % n for k in range(N - 1))  # frequency -(l_k - l_N)
    f, df = spectrum[index].real, d_spectrum[index].real
    out = (irreps, f / f[0], df / f[0])
    for a in out:
        a.setflags(write=False)  # cached: shared between callers
    return shift + math.log(f[0]), *out


def _dimensions(irreps: np.ndarray) -> np.ndarray:
    """Weyl's ``d_λ`` for rows of ``irreps (R, N)``, as float64."""
    N = irreps.shape[1]
    l = irreps + (N - 1 - np.arange(N))
    i, j = np.triu_indices(N, k=1)
    return np.prod((l[:, i] - l[:, j]) / (j - i), axis=-1)


def _lattice_sums(N: int, beta: float, L, n_p: int) -> tuple[float, float, float]:
    """``(log f_0, Σ_λ r_λ^{n_P}, Σ_λ r_λ^{n_P-1} r'_λ)`` summed until the shell at the
    cutoff is negligible. Large ``β`` on a small torus needs many irreps; when their grid
    grows too large the call is refused, naming ``N``, ``beta`` and ``L``."""
    m_max = 8
    blame = f"N = {N}, beta = {beta} and L = {L!r} ({n_p} plaquettes)"
    while True:
        log_f0, irreps, f, df = _coefficients(N, beta, m_max, blame)
        dims = _dimensions(irreps)
        r = np.clip(f / dims, 0.0, 1.0)  # f_λ >= 0 exactly; clip rounding noise
        dr = df / dims
        shell = irreps[:, 0] == m_max
        if np.max(r[shell]) ** n_p * shell.sum() < _IRREP_CUTOFF:
            return log_f0, float((r**n_p).sum()), float((r ** (n_p - 1) * dr).sum())
        m_max *= 2


def sun_character_coefficient(N: int, beta: float, weights: Sequence[int]) -> float:
    """``f_λ(β) = ∫ dU χ_λ(U) e^{(β/N) Re tr U}``, the character coefficient of the plaquette.

    Args:
        N: the group SU(N).
        beta: ``β >= 0``.
        weights: partition ``λ`` (length ``N`` or ``N - 1``).

    Returns:
        ``f_λ`` as a float (``f_0 = 1`` at ``β = 0``; ``2 (λ_1+1) I_{λ_1+1}(β)/β`` for SU(2)),
        to about ``1e-14`` relative to ``f_0``.

    Raises:
        ValueError: for bad ``N``, ``β`` or weights.

    References:
        J.-M. Drouffe, J.-B. Zuber, Phys. Rept. 102 (1983) 1.
    """
    N, beta = _validate_n(N), _validate_beta(beta)
    lam = _partition(weights, N)
    lam = np.array(lam) - lam[-1]  # the same SU(N) irrep, with λ_N = 0
    blame = f"N = {N}, beta = {beta} and weights = {tuple(int(v) for v in lam)}"
    log_f0, irreps, f, _ = _coefficients(N, beta, int(lam[0]), blame)
    row = np.nonzero((irreps == lam).all(axis=1))[0][0]
    return float(math.exp(log_f0) * f[row])


def sun_lattice_log_z(N: int, beta: float, L: int | Sequence[int]) -> float:
    """Exact ``log Z`` of 2D SU(N) Wilson gauge theory on a periodic ``L0 × L1`` torus.

    ``Z = ∫ Π_links dU e^{(β/N) Σ_P Re tr U_P} = Σ_λ (f_λ/d_λ)^{n_P}`` (module docstring),
    Haar measure normalised per link, so ``Z(β = 0) = 1``. Irreps are summed until the
    dropped terms are below ``1e-18`` of the sum (``β ≲ 30`` is fast on the smallest tori).

    Args:
        N: the group SU(N), ``N >= 2``.
        beta: ``β >= 0``; the action is ``S = -(β/N) Σ_P Re tr U_P``.
        L: lattice extent (``L × L``) or extents ``(L0, L1)``, each >= 2; only ``n_P``
            matters.

    Returns:
        ``log Z`` as a float, to about ``1e-13`` relative.

    Raises:
        TypeError: for arguments of the wrong kind (module docstring).
        ValueError: for a bad ``N``, ``β`` or lattice, or a ``β`` so large for this torus
            that the irreps needed exceed the grid limit (module docstring).

    References:
        J.-M. Drouffe, J.-B. Zuber, Phys. Rept. 102 (1983) 1; I. Bars, J. Math. Phys. 21
        (1980) 2678.
    """
    N, beta, n_p = _lattice_args(N, beta, L)
    log_f0, z, _ = _lattice_sums(N, beta, L, n_p)
    return n_p * log_f0 + math.log(z)


def sun_plaquette(N: int, beta: float, L: int | Sequence[int]) -> float:
    """Exact ``⟨(1/N) Re tr U_P⟩ = (1/n_P) ∂_β log Z`` in finite volume.

    ``Σ_λ r_λ^{n_P-1} r'_λ / Σ_λ r_λ^{n_P}`` with the analytic ``β``-derivative ``r'_λ``;
    tends to :func:`sun_plaquette_infinite_volume` as ``n_P → ∞``. Arguments and raises as
    for :func:`sun_lattice_log_z`.
    """
    N, beta, n_p = _lattice_args(N, beta, L)
    _, z, dz = _lattice_sums(N, beta, L, n_p)
    # in [0, 1] exactly (⟨Re tr U_P⟩ grows from 0 at β = 0); the quadrature's rounding, about
    # 1e-17, could leave it by that much at β → 0
    return min(max(dz / z, 0.0), 1.0)


def sun_plaquette_infinite_volume(N: int, beta: float) -> float:
    """``⟨(1/N) Re tr U_P⟩ = ∂_β log f_0(β)`` of 2D SU(N) Wilson theory in infinite volume.

    ``I_2(β)/I_1(β)`` for SU(2); ``≈ β/4`` (SU(2)) and ``≈ β/(2N²)`` (``N >= 3``) for small
    ``β``.

    Raises:
        ValueError: for a bad ``N`` or ``β``.

    Example:
        >>> round(sun_plaquette_infinite_volume(2, 1.0), 6)  # I_2(1)/I_1(1)
        0.240194
    """
    N, beta = _validate_n(N), _validate_beta(beta)
    plaquette = float(_coefficients(N, beta, 0, f"N = {N} and beta = {beta}")[3][0])
    return min(max(plaquette, 0.0), 1.0)  # rounding, as in sun_plaquette


def sun_wilson_loop_infinite_volume(N: int, beta: float, area: int) -> float:
    """Area law ``⟨(1/N) Re tr W⟩ = (f_F/(N f_0))^A`` for a loop enclosing ``A`` plaquettes.

    ``F = (1, 0, …, 0)``; ``f_F/(N f_0)`` equals :func:`sun_plaquette_infinite_volume`, so the
    string tension is ``-log`` of the infinite-volume plaquette.

    Args:
        N, beta: as for :func:`sun_lattice_log_z`.
        area: number of enclosed plaquettes ``A >= 1``.

    Raises:
        ValueError: for a bad ``N``, ``β`` or area.

    References:
        J.-M. Drouffe, J.-B. Zuber, Phys. Rept. 102 (1983) 1.
    """
    N, beta = _validate_n(N), _validate_beta(beta)
    area = checks.integer("area", area, low=1, high=2**53)  # enclosed plaquettes
    _, irreps, f, _ = _coefficients(N, beta, 1, f"N = {N} and beta = {beta}")
    fundamental = np.nonzero((irreps[:, 0] == 1) & (irreps[:, 1:].sum(axis=1) == 0))[0][0]
    return float(f[fundamental] / N) ** int(area)
