"""Batched conjugate gradient for Hermitian positive-definite operators such as ``D†D``.

The contract: :func:`conjugate_gradient` solves ``A x = b`` for a batch of independent
right-hand sides ``b (B, ...)`` (a Wilson fermion field ``(B, L0, L1, 2)``, say), where
``apply_A`` maps a batch of fields to a batch of fields and is Hermitian positive definite
for each sample separately (``D†D``, or the even/odd ``M†M`` with ``M = 1 - D_eo D_oe``).

- Inner products are per sample, ``<a, b> = Σ a.conj() · b`` over every non-batch axis
  (lattice and spin), so each chain has its own step lengths ``α, β`` and its own
  convergence: a sample whose relative residual ``|r| / |b|`` reaches ``tol`` stops updating
  while the others go on.
- Convergence is judged on the *true* residual ``|b - A x| / |b|``: when the recursive
  residual says a sample has converged, the true one is computed, and a sample whose true
  residual is still above ``tol`` (rounding drift) restarts from its current ``x``.
- Stagnation: the true residual cannot go below about ``eps · cond(A)`` (the rounding of
  ``A x`` itself). For ``A = D†D`` with a near-zero mode of ``D`` this floor can exceed
  ``tol``: an exceptional configuration with ``cond(D†D) ≈ 3·10⁸`` stops near ``3·10⁻⁸`` in
  complex128. A sample whose true residual fails to halve over a whole restart has reached
  its floor: it stops there (``stagnated``) instead of spending the rest of ``max_iter``,
  and the error says so, with the floor and the condition number it implies.
- Precision: use complex128 for anything that enters an accept/reject step. In complex64
  the residual stalls near ``1e-6`` once ``cond(D†D)`` is large (a near-zero mode near
  ``κ_c`` gives ``cond ~ 1e5``); asking complex64 for ``tol = 1e-10`` ends in
  :class:`CGNotConverged`. Half precision is refused.
- A sample that does not reach ``tol`` within ``max_iter`` iterations raises
  :class:`CGNotConverged` (a ``RuntimeError`` naming the samples, their residuals and
  ``max_iter``), unless ``raise_on_failure=False``, in which case the result says so in
  ``converged``.

Each iteration costs one ``apply_A`` and one host synchronisation (the convergence test).

References:
    M. R. Hestenes, E. Stiefel, "Methods of conjugate gradients for solving linear systems",
    J. Res. Nat. Bur. Standards 49 (1952) 409; the even/odd use of CG for Wilson fermions:
    T. DeGrand, P. Rossi, Comput. Phys. Commun. 60 (1990) 211.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import checks

__all__ = ["CGResult", "CGNotConverged", "conjugate_gradient"]


@dataclass(frozen=True)
class CGResult:
    """The outcome of a batched CG solve.

    Attributes:
        x: the solutions, shape of ``b``.
        iterations: ``(B,)`` int64, iterations (operator applications) each sample used.
        residual: ``(B,)`` real, final relative true residual ``|b - A x| / |b|``
            (0 for ``b = 0``).
        converged: ``(B,)`` bool, ``residual <= tol``.
        stagnated: ``(B,)`` bool, stopped above ``tol`` because a restart no longer lowered
            the true residual (the module docstring); ``None`` when not recorded.
    """

    x: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor
    stagnated: torch.Tensor | None = None


class CGNotConverged(RuntimeError):
    """Some samples of a batched CG solve did not reach the tolerance within ``max_iter``.

    Attributes:
        result: the :class:`CGResult` reached so far.
    """

    def __init__(self, message: str, result: CGResult):
        super().__init__(message)
        self.result = result


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample inner product ``Σ a* b`` over every non-batch axis, ``(B,)``."""
    return (a.conj() * b).flatten(1).sum(dim=1)


def _norm2(a: torch.Tensor) -> torch.Tensor:
    """Per-sample ``|a|²``, real ``(B,)``."""
    return (a.conj() * a).real.flatten(1).sum(dim=1)


def conjugate_gradient(
    apply_A: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    tol: float = 1e-10,
    max_iter: int | None = None,
    x0: torch.Tensor | None = None,
    raise_on_failure: bool = True,
) -> CGResult:
    """Solve ``A x = b`` per sample for Hermitian positive-definite ``A``.

    Args:
        apply_A: ``v (B, ...) -> A v (B, ...)``, Hermitian positive definite per sample
            (e.g. ``lambda v: D._apply_dagger(U, D._apply(U, v))``).
        b: right-hand sides ``(B, ...)``: complex128 (recommended), complex64, float64 or
            float32.
        tol: relative residual ``|b - A x| / |b|`` to reach, ``0 < tol < 1``.
        max_iter: iterations allowed per sample; ``None`` gives ``max(100, 2n)`` with ``n``
            the number of unknowns per sample (exact arithmetic needs at most ``n``).
        x0: starting guess, shape and dtype of ``b`` (zeros if ``None``).
        raise_on_failure: raise :class:`CGNotConverged` when a sample misses ``tol``.

    Returns:
        A :class:`CGResult`.

    Raises:
        TypeError: for an ``apply_A`` that is not callable, a ``b``/``x0`` that is not a
            tensor, non-number ``tol`` or non-integer ``max_iter``.
        ValueError: for half precision, non-finite or mismatched ``b``/``x0``, ``tol``
            outside ``(0, 1)``, ``max_iter < 1``, an ``apply_A`` that changes the shape or
            shows non-positive curvature ``Re p†Ap <= 0`` (not positive definite).
        CGNotConverged: when some sample misses ``tol`` (unless ``raise_on_failure=False``).

    Example:
        >>> D = WilsonDirac(kappa=0.2)
        >>> U = D.links(theta)
        >>> X = conjugate_gradient(lambda v: D._apply_dagger(U, D._apply(U, v)), phi).x
    """
    if not callable(apply_A):
        raise checks.ArgumentKindError(
            f"apply_A must be a callable v -> A v, got {type(apply_A).__name__}"
        )
    checks.tensor("b", b, allow_complex=True)
    if b.dim() < 2 or b.shape[0] == 0:
        raise ValueError(f"b must be batched, shape (B, ...) with B >= 1, got {tuple(b.shape)}")
    tol = checks.real("tol", tol, low=0, high=1, low_open=True, high_open=True)
    n = b[0].numel()
    max_iter = max(100, 2 * n) if max_iter is None else checks.integer("max_iter", max_iter, low=1)
    raise_on_failure = checks.boolean("raise_on_failure", raise_on_failure)
    if x0 is not None:
        checks.tensor("x0", x0, allow_complex=True, shape=tuple(b.shape), dtype=b.dtype)
        checks.tensor("x0", x0, allow_complex=True, device=b.device)

    B = b.shape[0]
    b_norm = _norm2(b).sqrt()  # (B,)
    scale = torch.where(b_norm > 0, b_norm, torch.ones_like(b_norm))  # b = 0: x = 0 exactly
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    iterations = torch.zeros(B, dtype=torch.int64, device=b.device)
    r = b - _checked_apply(apply_A, x, b) if x0 is not None else b.clone()
    residual = _norm2(r).sqrt() / scale
    done = residual <= tol
    stagnated = torch.zeros_like(done)
    restarted = False  # the first run starts from x0 or zero, not from a restart
    while not bool(done.all()):  # samples not done always have iterations < max_iter
        x, iterations = _cg_run(apply_A, b, x, r, done, iterations, tol, scale, max_iter)
        r = b - _checked_apply(apply_A, x, b)  # the true residual, against rounding drift
        previous, residual = residual, _norm2(r).sqrt() / scale
        if restarted:  # a whole restart that did not halve the residual: at the floor
            stagnated = stagnated | (~done & (residual > tol) & (residual > 0.5 * previous))
        restarted = True
        done = done | stagnated | (residual <= tol) | (iterations >= max_iter)
    converged = residual <= tol
    result = CGResult(x, iterations, residual, converged, stagnated & ~converged)
    if raise_on_failure and not bool(converged.all()):
        bad = torch.nonzero(~converged).flatten().tolist()
        res = ", ".join(f"{residual[i].item():.2e}" for i in bad[:8])
        more = "" if len(bad) <= 8 else f" (and {len(bad) - 8} more)"
        message = (
            f"conjugate gradient did not reach the relative residual tol={tol:.1e} within "
            f"max_iter={max_iter} iterations for samples {bad[:8]}{more} (residuals {res})"
        )
        if bool(result.stagnated.any()):
            worst = residual[result.stagnated].max().item()
            eps = torch.finfo(residual.dtype).eps
            message += (
                f"; {int(result.stagnated.sum())} of them stagnated: their true residual "
                f"stopped falling at up to {worst:.1e}, the attainable accuracy eps·cond(A) "
                f"of this precision (cond(A) ~ {worst / eps:.0e}: a near-zero mode). "
                f"Loosen tol above that floor, or solve in higher precision"
            )
        else:
            message += f"; raise max_iter, loosen tol, or solve in complex128 ({b.dtype} was used)"
        raise CGNotConverged(message, result)
    return result


def _checked_apply(apply_A, v: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    Av = apply_A(v)
    if not isinstance(Av, torch.Tensor) or Av.shape != b.shape or Av.dtype != b.dtype:
        got = f"{tuple(Av.shape)} {Av.dtype}" if isinstance(Av, torch.Tensor) else type(Av)
        raise ValueError(
            f"apply_A must map fields {tuple(b.shape)} {b.dtype} to the same shape and dtype, "
            f"got {got}"
        )
    return Av


def _cg_run(apply_A, b, x, r, done, iterations, tol, scale, max_iter):
    """CG iterations from ``(x, r = b - A x)`` until every active sample's recursive
    residual reaches ``tol`` or its iterations reach ``max_iter``; ``done`` samples (and
    those that finish on the way) are frozen by zero step lengths."""
    active = ~done & (iterations < max_iter)
    p = r.clone()
    rr = _norm2(r)  # (B,) |r_k|²
    view = (-1, *([1] * (b.dim() - 1)))  # (B, 1, ..., 1)
    # A sample that meets Re p†Ap <= 0 is frozen and reported after the loop, so that each
    # iteration reads one flag from the device (the loop condition), not two.
    indefinite = torch.zeros_like(active)
    first_pAp = torch.zeros_like(rr)
    while bool(active.any()):
        Ap = _checked_apply(apply_A, p, b)
        pAp = _dot(p, Ap).real
        bad = active & ~(pAp > 0)
        first_pAp = torch.where(bad & ~indefinite, pAp, first_pAp)
        indefinite = indefinite | bad
        active = active & ~bad
        alpha = torch.where(active, rr / torch.where(active, pAp, torch.ones_like(pAp)), 0.0)
        x = x + alpha.view(view).to(b.dtype) * p  # x_{k+1} = x_k + α_k p_k
        r = r - alpha.view(view).to(b.dtype) * Ap  # r_{k+1} = r_k - α_k A p_k
        iterations = iterations + active.long()
        rr_new = _norm2(r)
        beta = torch.where(active, rr_new / torch.where(active, rr, torch.ones_like(rr)), 0.0)
        p = r + beta.view(view).to(b.dtype) * p  # p_{k+1} = r_{k+1} + β_k p_k
        rr = rr_new
        active = active & (rr.sqrt() / scale > tol) & (iterations < max_iter)
    if bool(indefinite.any()):
        raise ValueError(
            "apply_A is not positive definite (or not Hermitian): found a direction p "
            f"with Re p†Ap = {first_pAp[indefinite][0].item():.3e} <= 0; CG needs "
            "an operator such as D†D, not D itself"
        )
    return x, iterations
