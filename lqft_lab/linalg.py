"""Batched dense LU-based linear algebra that gives right answers on every CPU build.

PyTorch's CPU kernel for a *batch* of LU factorisations (``torch.linalg.lu_factor`` and
everything built on it: ``slogdet``, ``det``, ``inv``, ``solve``) calls LAPACK's ``getrf``
from several threads at once. MKL's ``getrf`` is not safe to call that way for matrices
large enough that it threads internally: the call hangs, printing
``Intel oneMKL ERROR: Parameter 6 was incorrect on entry to ZLASWP``, or returns wrong
factors (pytorch/pytorch#141358 and #142815; the fix, pytorch/pytorch#181570, had not been
released with torch 2.13.0). Measured here with torch 2.13.0+cpu (MKL 2024.2) and two
threads: a batch of 16 complex matrices inverts correctly up to ``n = 148`` and hangs from
``n = 152`` on; single matrices, ``lu_solve``, ``eigvals`` and ``cholesky`` are unaffected.

The functions below are drop-in replacements for their ``torch.linalg`` namesakes. On the
CPU, with more than one intra-op thread, for a batch of more than one matrix of size above
:data:`PER_MATRIX_ABOVE`, they factorise the matrices one at a time (each call still
threaded inside MKL) and stack the results; everywhere else (CUDA, small matrices, one
thread) they call ``torch.linalg`` directly. Autograd works through both paths. For the
Schwinger model the affected sizes are the dense Wilson–Dirac operator ``2V × 2V`` from
``L = 9`` and its even/odd Schur complement ``V × V`` from ``L = 13`` on.
"""

from __future__ import annotations

import torch

__all__ = ["PER_MATRIX_ABOVE", "det", "inv_ex", "lu_factor_ex", "slogdet", "solve", "solve_ex"]

# Matrices larger than this are factorised one at a time in a batch on a threaded CPU.
# The hang starts between 148 and 152 (above); 128 leaves a margin for other MKL builds.
PER_MATRIX_ABOVE = 128


def _one_at_a_time(A: torch.Tensor) -> bool:
    """Whether ``A``'s batch must be factorised matrix by matrix (see the module docstring)."""
    return (
        A.device.type == "cpu"
        and A.dim() > 2
        and A.shape[-1] > PER_MATRIX_ABOVE
        and A[..., 0, 0].numel() > 1
        and torch.get_num_threads() > 1
    )


def _map(fn, A: torch.Tensor, *others: torch.Tensor):
    """``fn`` on each matrix of ``A`` (with the matching entries of ``others``: right-hand
    sides ``(*batch, n)`` or ``(*batch, n, k)``, broadcast to ``A``'s batch), the results
    stacked back into ``A``'s batch shape."""
    batch = A.shape[:-2]
    flat = A.reshape(-1, *A.shape[-2:])
    rest = []
    for o in others:
        tail = o.shape[len(batch) :] if o.dim() > len(batch) else o.shape
        rest.append(o.expand(*batch, *tail).reshape(-1, *tail))
    outs = [fn(a, *(r[i] for r in rest)) for i, a in enumerate(flat.unbind(0))]
    if isinstance(outs[0], torch.Tensor):
        return torch.stack(outs).reshape(*batch, *outs[0].shape)
    stacked = tuple(
        torch.stack(parts).reshape(*batch, *parts[0].shape) for parts in zip(*outs, strict=True)
    )
    return type(outs[0])(stacked)  # torch.return_types: the fields by name, as torch's


def slogdet(A: torch.Tensor):
    """``torch.linalg.slogdet(A)``: ``(sign, logabsdet)`` of each matrix in the batch."""
    if _one_at_a_time(A):
        return _map(torch.linalg.slogdet, A)
    return torch.linalg.slogdet(A)


def det(A: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.det(A)`` of each matrix in the batch."""
    if _one_at_a_time(A):
        return _map(torch.linalg.det, A)
    return torch.linalg.det(A)


def inv_ex(A: torch.Tensor):
    """``torch.linalg.inv_ex(A)``: ``(inverse, info)``, ``info`` nonzero where singular."""
    if _one_at_a_time(A):
        return _map(torch.linalg.inv_ex, A)
    return torch.linalg.inv_ex(A)


def lu_factor_ex(A: torch.Tensor):
    """``torch.linalg.lu_factor_ex(A)``: ``(LU, pivots, info)``, for ``torch.linalg.lu_solve``."""
    if _one_at_a_time(A):
        return _map(torch.linalg.lu_factor_ex, A)
    return torch.linalg.lu_factor_ex(A)


def solve_ex(A: torch.Tensor, B: torch.Tensor):
    """``torch.linalg.solve_ex(A, B)``: ``(X, info)`` with ``A X = B``, for right-hand sides
    ``B`` of shape ``(*batch, n)`` or ``(*batch, n, k)`` (``A``'s batch)."""
    if _one_at_a_time(A):
        return _map(torch.linalg.solve_ex, A, B)
    return torch.linalg.solve_ex(A, B)


def solve(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.solve(A, B)``, ``B`` as for :func:`solve_ex`; raises where singular."""
    if _one_at_a_time(A):
        return _map(torch.linalg.solve, A, B)
    return torch.linalg.solve(A, B)
