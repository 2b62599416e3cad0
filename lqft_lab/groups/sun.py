"""SU(N) matrices: Haar sampling, projection, the exp map and the eigenvalue picture.

The toolkit behind notebook 03 and every SU(N) action, sampler and flow. Conventions:

* A batch of matrices is a complex tensor ``(..., N, N)`` (``complex64`` for training,
  ``complex128`` for exactness checks); functions keep the input's dtype and device.
* The Lie algebra su(N) is used in its anti-Hermitian, traceless form ``X = -X†``, so that
  ``exp(X)`` is in SU(N); :func:`project_algebra` is the orthogonal projection onto it.
* Arguments are checked for kind, dtype and shape (``TypeError``/``ValueError`` naming them)
  but not scanned for NaN: these functions run inside every sampler and flow step, where a
  scan costs a device synchronisation; samplers and flows refuse non-finite fields where they
  enter. The eigen-decompositions (:func:`eigenphases`, :func:`spectral_decomposition` for
  ``N >= 3``), which run on the host anyway, refuse them, as LAPACK cannot take them.
* Haar measure is normalised to 1. A class function ``f(U)`` depends only on the eigenphases
  ``θ = (θ_1, …, θ_N)`` of ``U``, and the Weyl integration formula reads

      ∫ dU f(U) = (1/N!) ∫ dθ_1…dθ_{N-1} / (2π)^{N-1}  |Δ(θ)|² f(θ),
      |Δ(θ)|² = Π_{i<j} |e^{iθ_i} - e^{iθ_j}|² = Π_{i<j} 4 sin²((θ_i - θ_j)/2),

  with ``θ_N = -Σ_{i<N} θ_i``. :func:`log_vandermonde_sq` is ``log |Δ(θ)|²``.
* Canonical eigenphases (:func:`spectral_decomposition`): of all lifts of the eigenvalues to
  real angles with ``Σ θ_i = 0`` exactly one, up to order, has ``θ_1 - θ_N <= 2π``. Sorted,
  ``θ_1 >= θ_2 >= … >= θ_N >= θ_1 - 2π``: a point of the Weyl alcove, which labels each
  conjugacy class of SU(N) once. Its gaps ``g_i = θ_i - θ_{i+1}`` (``i < N``) and
  ``g_N = θ_N - θ_1 + 2π`` are non-negative and sum to ``2π``, so the alcove is a simplex.

References:
    F. Mezzadri, "How to generate random matrices from the classical compact groups",
    Notices AMS 54 (2007) 592, arXiv:math-ph/0609050 (Haar sampling by QR).
    D. Boyda et al., "Sampling using SU(N) gauge equivariant flows", arXiv:2008.05456,
    sec. III (spectral flows, the Weyl measure and canonical cells).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .. import checks

__all__ = [
    "check_matrices",
    "dagger",
    "haar",
    "project_sun",
    "project_algebra",
    "random_algebra",
    "expm",
    "eigenphases",
    "spectral_decomposition",
    "from_eigenphases",
    "alcove_gaps",
    "eigenphases_from_gaps",
    "log_vandermonde_sq",
    "unitarity_violation",
    "check_special_unitary",
]


def check_matrices(U: torch.Tensor, name: str = "U") -> int:
    """Check that ``U`` is a complex batch of square matrices ``(..., N, N)``; return ``N``.

    Raises:
        TypeError: if ``U`` is not a tensor.
        ValueError: if it is not complex64/complex128, or its last two axes are not equal and
            at least 2.
    """
    if not isinstance(U, torch.Tensor):
        raise checks.ArgumentKindError(f"{name} must be a torch.Tensor, got {type(U).__name__}")
    if U.dtype not in checks.COMPLEX_DTYPES:
        raise ValueError(f"{name} must be complex (complex64 or complex128), got {U.dtype}")
    if U.dim() < 2 or U.shape[-1] != U.shape[-2] or U.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., N, N) with N >= 2, got {tuple(U.shape)}")
    return U.shape[-1]


def _check_n(N: int) -> int:
    return checks.integer("N", N, low=2)


def _check_complex_dtype(dtype: torch.dtype) -> None:
    if not isinstance(dtype, torch.dtype):
        raise checks.ArgumentKindError(f"dtype must be a torch.dtype, got {dtype!r:.80}")
    if dtype not in (torch.complex64, torch.complex128):
        raise ValueError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")


def _batch_shape(batch_shape) -> tuple[int, ...]:
    if isinstance(batch_shape, (list, tuple, torch.Size)):
        return tuple(checks.integer("batch_shape", s, low=0) for s in batch_shape)
    return (checks.integer("batch_shape", batch_shape, low=0),)


def _draw_args(N, dtype, device, generator):
    """Checked ``N``, ``dtype`` and device for a random draw (the generator's when not given)."""
    N = _check_n(N)
    _check_complex_dtype(dtype)
    if device is not None:
        device = checks.torch_device("device", device)
    elif generator is not None and isinstance(generator, torch.Generator):
        device = generator.device
    checks.random_generator("generator", generator, device or "cpu")
    return N, device


def _check_real(name: str, x, low: int) -> None:
    """A real tensor ``(..., n)`` with ``n >= low`` (eigenphases, gaps)."""
    checks.tensor(name, x, finite=False)
    if x.dim() < 1 or x.shape[-1] < low:
        raise ValueError(f"{name} must have shape (..., N) with N >= {low}, got {tuple(x.shape)}")


def dagger(U: torch.Tensor) -> torch.Tensor:
    """Hermitian conjugate ``U†`` of the last two axes (real or complex ``(..., n, m)``)."""
    if not isinstance(U, torch.Tensor):
        raise checks.ArgumentKindError(f"U must be a torch.Tensor, got {type(U).__name__}")
    if U.dim() < 2:
        raise ValueError(f"U must have at least two axes (..., n, m), got {tuple(U.shape)}")
    return U.transpose(-1, -2).conj()


def _det_phase_fix(U: torch.Tensor) -> torch.Tensor:
    # multiply by det(U)^{-1/N} (principal branch): U(N) → SU(N)
    N = U.shape[-1]
    phase = torch.angle(torch.linalg.det(U)) / N  # (...)
    return U * torch.polar(torch.ones_like(phase), -phase)[..., None, None]


def haar(
    batch_shape: int | Sequence[int],
    N: int,
    dtype: torch.dtype = torch.complex128,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Haar-distributed SU(N) matrices ``(*batch_shape, N, N)``.

    QR of a complex Ginibre matrix with the phases of ``diag(R)`` moved into ``Q`` gives Haar
    U(N) (Mezzadri); multiplying by ``det^{-1/N}`` then gives Haar SU(N), because the centre
    element that the branch choice introduces is independent of the SU(N) part.

    Args:
        batch_shape: leading shape, e.g. ``(B, 2, L, L)`` for a lattice of links.
        N: matrix size, ``N >= 2``.
        dtype: ``torch.complex64`` or ``torch.complex128``.
        device: where to allocate (the generator's device if it has one).
        generator: random number generator, for reproducible draws.

    Raises:
        TypeError, ValueError: naming the argument: ``batch_shape`` not non-negative
            integers, ``N < 2``, a ``dtype`` other than complex64/complex128, an unknown
            ``device``, a ``generator`` that is not one or is on another device.
    """
    shape = _batch_shape(batch_shape)
    N, device = _draw_args(N, dtype, device, generator)
    Z = torch.randn(*shape, N, N, dtype=dtype, device=device, generator=generator)
    Q, R = torch.linalg.qr(Z)
    d = torch.diagonal(R, dim1=-2, dim2=-1)  # (..., N)
    Q = Q * (d / d.abs())[..., None, :]
    return _det_phase_fix(Q)


def project_sun(M: torch.Tensor) -> torch.Tensor:
    """The SU(N) matrix nearest to ``M`` (polar part ``W V†`` of ``M = W Σ V†``, det fixed).

    Used to remove round-off drift from long products; for ``M`` already in SU(N) it returns
    ``M`` up to round-off.
    """
    check_matrices(M, "M")
    W, _, Vh = torch.linalg.svd(M)
    return _det_phase_fix(W @ Vh)


def project_algebra(M: torch.Tensor) -> torch.Tensor:
    """Traceless anti-Hermitian part ``(M - M†)/2 - tr[(M - M†)/2]/N`` of ``M`` (in su(N))."""
    N = check_matrices(M, "M")
    A = 0.5 * (M - dagger(M))
    tr = torch.diagonal(A, dim1=-2, dim2=-1).sum(-1)  # (...)
    eye = torch.eye(N, dtype=M.dtype, device=M.device)
    return A - (tr / N)[..., None, None] * eye


def random_algebra(
    batch_shape: int | Sequence[int],
    N: int,
    dtype: torch.dtype = torch.complex128,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gaussian elements ``X = i Σ_a p_a T_a`` of su(N), ``p_a ~ N(0, 1)``, ``tr T_a T_b = δ_ab/2``.

    Equivalently ``X`` is anti-Hermitian, traceless, with density ``∝ exp(tr X²)`` (note
    ``tr X² = -Σ_a p_a² / 2``): the HMC momentum distribution for kinetic energy
    ``-tr X² = ½ Σ_a p_a²``.

    Raises:
        TypeError, ValueError: as :func:`haar`.
    """
    shape = _batch_shape(batch_shape)
    N, device = _draw_args(N, dtype, device, generator)
    # A complex Ginibre G has E|G_ij|² = 1; (G - G†)/2 has off-diagonal real and imaginary
    # parts of variance 1/4 each and imaginary diagonal of variance 1/2 - the distribution
    # ∝ exp(tr A²) on anti-Hermitian A; removing the trace projects onto su(N).
    G = torch.randn(*shape, N, N, dtype=dtype, device=device, generator=generator)
    return project_algebra(G)


def expm(X: torch.Tensor) -> torch.Tensor:
    """Matrix exponential ``exp(X)`` of the last two axes (in SU(N) for ``X`` in su(N))."""
    check_matrices(X, "X")
    return torch.linalg.matrix_exp(X)


def eigenphases(U: torch.Tensor) -> torch.Tensor:
    """Eigenphases of a batch of unitary matrices in ``(-π, π]``, shape ``(..., N)``, unsorted."""
    check_matrices(U)
    return torch.angle(_on_host(torch.linalg.eigvals, U))


def _on_host(decompose, U: torch.Tensor):
    """``decompose(U)`` computed by LAPACK on the host, the results moved back to ``U``'s device.

    On CUDA, ``torch.linalg.eig`` and ``eigvals`` already run on the host, through MAGMA, one
    matrix of the batch at a time: on an H100 that made a training step of notebook 03's
    single-matrix SU(3) flow (two decompositions of 1024 matrices) take 640 ms, against 39 ms
    for the whole step on one CPU core. LAPACK takes the batch at once; the copies of the
    small matrices each way cost little, and the decomposition waited for the host anyway.
    """
    host = U if U.device.type == "cpu" else U.cpu()
    if not bool(torch.isfinite(host).all()):  # LAPACK would fail without saying which input
        raise ValueError("U must be finite: it holds NaN or infinite entries")
    if U.device.type == "cpu":
        return decompose(U)
    out = decompose(host)
    if isinstance(out, torch.Tensor):
        return out.to(U.device)
    return tuple(t.to(U.device) for t in out)


def spectral_decomposition(U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical eigenphases and matching eigenvectors of SU(N) matrices: ``U = V e^{iθ} V†``.

    Returns:
        ``(theta, V)``: ``theta`` of shape ``(..., N)``, real, sorted descending with
        ``Σ θ_i = 0`` and ``θ_1 - θ_N <= 2π`` (the Weyl alcove, module docstring); ``V`` of
        shape ``(..., N, N)`` whose column ``i`` is the unit eigenvector for ``e^{iθ_i}``.
        For distinct eigenvalues ``V`` is unitary up to round-off; phases of its columns
        are arbitrary, which :func:`from_eigenphases` does not see.

    SU(2) is decomposed in closed form (:func:`_su2_spectral_decomposition`), so on a GPU it
    stays on the device; larger ``N`` go to ``torch.linalg.eig`` on the CPU, as a batch
    (:func:`_on_host`), and the results come back to ``U``'s device.
    """
    N = check_matrices(U)
    if N == 2:
        return _su2_spectral_decomposition(U)
    evals, V = _on_host(torch.linalg.eig, U)  # (..., N), (..., N, N)
    phi = torch.angle(evals)
    phi, order = torch.sort(phi, dim=-1, descending=True)
    V = torch.gather(V, -1, order.unsqueeze(-2).expand(V.shape))
    # Σ φ_i = 2π k with integer k; rotating the sorted list by k and moving the k largest
    # (k < 0: |k| smallest) by ∓2π gives the lift with Σ θ = 0 and θ_1 - θ_N <= 2π.
    k = torch.round(phi.sum(-1, keepdim=True) / (2 * math.pi)).long()  # (..., 1)
    i = torch.arange(N, device=U.device) + k  # (..., N)
    idx = torch.remainder(i, N)
    wraps = torch.div(i - idx, N, rounding_mode="floor")  # number of 2π shifts
    theta = torch.gather(phi, -1, idx) - 2 * math.pi * wraps.to(phi.dtype)
    theta = theta - theta.mean(-1, keepdim=True)  # remove round-off from det(U) != 1
    V = torch.gather(V, -1, idx.unsqueeze(-2).expand(V.shape))
    return theta, V


def _su2_spectral_decomposition(U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`spectral_decomposition` for SU(2), in closed form.

    Write ``U = a₀ 1 + i a·σ`` with ``a₀ = Re tr U / 2`` and ``a·σ = (U - U†)/(2i)``. Its
    eigenvalues are ``a₀ ± i|a|``, so ``θ = (φ, -φ)`` with ``φ = atan2(|a|, a₀) ∈ [0, π]``,
    and the eigenvector for ``e^{iφ}`` is that of ``n·σ`` (``n = a/|a|``) for ``+1``: a
    non-zero column of the projector ``(1 + n·σ)/2``. The column with the larger norm is
    taken, ``(1 + n₃, n₁ + i n₂)/√(2(1 + n₃))`` or ``(n₁ - i n₂, 1 - n₃)/√(2(1 - n₃))``;
    the other eigenvector is ``(-q*, p*)`` for ``(p, q)``. At ``U = ±1`` (``|a| = 0``, Haar
    measure zero) ``V = 1``.
    """
    a0 = 0.5 * (U[..., 0, 0] + U[..., 1, 1]).real
    H = (U - dagger(U)) / 2j  # a·σ = [[a₃, a₁ - i a₂], [a₁ + i a₂, -a₃]]
    a3 = 0.5 * (H[..., 0, 0] - H[..., 1, 1]).real
    a12 = 0.5 * (H[..., 1, 0] + H[..., 0, 1].conj())  # a₁ + i a₂
    norm = torch.sqrt(a3**2 + a12.abs() ** 2)
    phi = torch.atan2(norm, a0)
    theta = torch.stack([phi, -phi], dim=-1)
    tiny = torch.finfo(norm.dtype).tiny
    degenerate = norm <= tiny
    safe = torch.where(degenerate, 1.0, norm)
    n3 = torch.where(degenerate, 1.0, a3 / safe)
    n12 = torch.where(degenerate, 0.0, a12 / safe)  # n₁ + i n₂
    upper = n3 >= 0
    p = torch.where(upper, (1 + n3).to(U.dtype), n12.conj())
    q = torch.where(upper, n12, (1 - n3).to(U.dtype))
    scale = torch.sqrt(2 * (1 + n3.abs())).to(U.dtype)
    p, q = p / scale, q / scale
    V = torch.stack([torch.stack([p, -q.conj()], -1), torch.stack([q, p.conj()], -1)], -2)
    return theta, V


def from_eigenphases(theta: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Rebuild ``V diag(e^{iθ}) V†`` from eigenphases ``(..., N)`` and eigenvectors ``(..., N, N)``.

    Phases of the columns of ``V`` drop out, as do reorderings applied to both arguments.

    Raises:
        TypeError, ValueError: ``theta`` not a real tensor ``(..., N)`` or ``V`` not complex
            ``(..., N, N)`` of the matching ``N`` and precision.
    """
    N = check_matrices(V, "V")
    _check_real("theta", theta, 2)
    if theta.shape[-1] != N or theta.dtype != V.real.dtype or theta.device != V.device:
        raise ValueError(
            f"theta must be (..., {N}) in {V.real.dtype} on {V.device} to match V, got "
            f"{tuple(theta.shape)} {theta.dtype} on {theta.device}"
        )
    phases = torch.polar(torch.ones_like(theta), theta).to(V.dtype)  # (..., N)
    return (V * phases[..., None, :]) @ dagger(V)


def alcove_gaps(theta: torch.Tensor) -> torch.Tensor:
    """Gaps ``g_i = θ_i - θ_{i+1}`` and ``g_N = θ_N - θ_1 + 2π`` of canonical eigenphases.

    ``(..., N) -> (..., N)``, non-negative, summing to ``2π`` (a point of the simplex).
    """
    _check_real("theta", theta, 2)
    g = theta - torch.roll(theta, -1, dims=-1)
    return torch.cat([g[..., :-1], g[..., -1:] + 2 * math.pi], dim=-1)


def eigenphases_from_gaps(g: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`alcove_gaps`: the canonical eigenphases with ``Σ θ = 0``.

    Only ``g_1 … g_{N-1}`` are used (``g_N`` is ``2π`` minus their sum); ``θ_i = θ_1 -
    Σ_{j<i} g_j`` with ``θ_1 = (1/N) Σ_{j<N} (N - j) g_j``. The map from
    ``(θ_1, …, θ_{N-1})`` to ``(g_1, …, g_{N-1})`` is linear with a constant Jacobian.
    """
    _check_real("g", g, 2)
    N = g.shape[-1]
    head = g[..., :-1]  # (..., N-1)
    cum = torch.cumsum(head, dim=-1)  # Σ_{j<=i} g_j
    weights = torch.arange(N - 1, 0, -1, dtype=g.dtype, device=g.device)  # N - j
    theta1 = (head * weights).sum(-1, keepdim=True) / N
    return torch.cat([theta1, theta1 - cum], dim=-1)


def log_vandermonde_sq(theta: torch.Tensor) -> torch.Tensor:
    """``log |Δ(θ)|² = Σ_{i<j} log 4 sin²((θ_i - θ_j)/2)`` for eigenphases ``(..., N) -> (...)``.

    ``-inf`` at degenerate eigenvalues (a set of Haar measure zero).
    """
    _check_real("theta", theta, 2)
    N = theta.shape[-1]
    i, j = torch.triu_indices(N, N, offset=1, device=theta.device)
    d = theta[..., i] - theta[..., j]  # (..., N(N-1)/2)
    return 2.0 * torch.log(torch.abs(2.0 * torch.sin(0.5 * d))).sum(-1)


def unitarity_violation(U: torch.Tensor) -> torch.Tensor:
    """Largest ``|U U† - 1|`` entry and ``|det U - 1|`` per matrix, ``(...)``: 0 for SU(N)."""
    N = check_matrices(U)
    eye = torch.eye(N, dtype=U.dtype, device=U.device)
    off = (U @ dagger(U) - eye).abs().amax(dim=(-2, -1))
    return torch.maximum(off, (torch.linalg.det(U) - 1).abs())


def check_special_unitary(U: torch.Tensor, name: str = "U") -> None:
    """Raise a ``ValueError`` unless every matrix of ``U`` is in SU(N) to ``√ulp`` of its dtype.

    Samplers call it once on their starting links: a non-unitary start (or a NaN) would
    otherwise surface as a silently wrong action many steps later.

    Raises:
        TypeError: ``U`` is not a tensor, ``name`` not a string.
        ValueError: ``U`` is not a complex ``(..., N, N)`` batch in SU(N) (NaN included).
    """
    if not isinstance(name, str):
        raise checks.ArgumentKindError(f"name must be a string, got {name!r:.80}")
    N = check_matrices(U, name)
    tol = math.sqrt(torch.finfo(U.dtype).eps)
    with torch.no_grad():
        violation = unitarity_violation(U.detach())
        if not bool((violation < tol).all()):  # also catches NaN
            raise ValueError(
                f"{name} must be in SU({N}) (|U U† - 1| and |det U - 1| below {tol:.1e}), got a "
                f"violation of {float(violation.max()):.1e}; project it with project_sun"
            )
