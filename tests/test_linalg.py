"""lqft_lab.linalg: batched LU-based linear algebra that stays right on a threaded CPU.

On torch 2.13.0+cpu a batch of LU factorisations of matrices larger than about 150 hangs
with two threads (MKL's getrf called concurrently, pytorch/pytorch#141358). The wrappers
must (1) finish there, with the right numbers, (2) agree with torch.linalg matrix by
matrix, values and gradients, on both of their paths, and (3) leave small batches to
torch.linalg's batched kernel.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from lqft_lab import linalg

N_LARGE = linalg.PER_MATRIX_ABOVE + 32  # a size where torch's batched kernel is unsafe


def _matrices(batch, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(*batch, n, n, dtype=dtype, generator=g)
    return A + 2 * n**0.5 * torch.eye(n, dtype=dtype)  # well conditioned, det of either sign


@pytest.fixture
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


def test_a_large_batch_finishes_with_the_right_numbers_on_two_threads():
    """The reproducer of the bug, in a subprocess with a time limit: torch's own batched
    inverse of this batch hangs here; the wrapper's must finish and be an inverse."""
    code = textwrap.dedent(
        f"""
        import torch
        from lqft_lab import linalg
        torch.set_num_threads(2)
        n = {N_LARGE + 40}
        A = torch.randn(16, n, n, dtype=torch.complex128) + 2 * n ** 0.5 * torch.eye(n)
        X, info = linalg.inv_ex(A)
        print(float((A @ X - torch.eye(n)).abs().max()), int(info.abs().sum()))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    residual, info = done.stdout.split()
    assert float(residual) < 1e-12 and int(info) == 0, done.stdout
    assert "incorrect on entry" not in done.stderr, done.stderr


@pytest.mark.parametrize("n", [8, N_LARGE])  # torch's batched path, the per-matrix path
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_every_wrapper_agrees_with_torch_matrix_by_matrix(two_threads, n, dtype):
    A = _matrices((2, 3), n, dtype)
    rhs = torch.randn(2, 3, n, 2, dtype=dtype, generator=torch.Generator().manual_seed(1))
    assert linalg._one_at_a_time(A) == (n > linalg.PER_MATRIX_ABOVE)
    sign, logabs = linalg.slogdet(A)
    X, info = linalg.inv_ex(A)
    LU, pivots, info_lu = linalg.lu_factor_ex(A)
    Y, info_solve = linalg.solve_ex(A, rhs)
    y = linalg.solve(A, rhs[..., 0])
    assert sign.shape == logabs.shape == info.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            a = A[i, j]
            ref = torch.linalg.slogdet(a)
            torch.testing.assert_close(sign[i, j], ref.sign)
            torch.testing.assert_close(logabs[i, j], ref.logabsdet)
            torch.testing.assert_close(linalg.det(A)[i, j], torch.linalg.det(a))
            torch.testing.assert_close(X[i, j], torch.linalg.inv(a))
            torch.testing.assert_close(Y[i, j], torch.linalg.solve(a, rhs[i, j]))
            torch.testing.assert_close(y[i, j], torch.linalg.solve(a, rhs[i, j, :, 0]))
            ref_lu, ref_piv = torch.linalg.lu_factor(a)
            torch.testing.assert_close(LU[i, j], ref_lu)
            assert torch.equal(pivots[i, j], ref_piv)
    assert not info.any() and not info_lu.any() and not info_solve.any()
    solved = torch.linalg.lu_solve(LU, pivots, rhs)
    torch.testing.assert_close(A @ solved, rhs)


def test_the_per_matrix_path_keeps_the_gradient(two_threads):
    A = _matrices((3,), N_LARGE, torch.complex128).requires_grad_()
    assert linalg._one_at_a_time(A)
    (grad,) = torch.autograd.grad(linalg.slogdet(A).logabsdet.sum(), A)
    # d log|det A| / dA = (A^{-1})^H in torch's convention for complex inputs
    expected = linalg.inv_ex(A.detach()).inverse.mH  # torch.linalg.inv itself would hang
    torch.testing.assert_close(grad, expected)


def test_small_batches_one_thread_and_single_matrices_use_torchs_kernel(two_threads):
    assert not linalg._one_at_a_time(_matrices((4,), 8, torch.float64))  # small matrices
    assert not linalg._one_at_a_time(_matrices((), N_LARGE, torch.float64))  # no batch
    assert not linalg._one_at_a_time(_matrices((1,), N_LARGE, torch.float64))  # batch of one
    torch.set_num_threads(1)
    assert not linalg._one_at_a_time(_matrices((4,), N_LARGE, torch.float64))
