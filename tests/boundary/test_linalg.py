"""Boundary tests of lqft_lab.linalg: torch.linalg's own errors come through unchanged on
both paths (torch's batched kernel for small matrices, one matrix at a time for large
ones on a threaded CPU): a non-square matrix (where the function needs a square one) and
an integer dtype are refused by name."""

from __future__ import annotations

import pytest
import torch

from lqft_lab import linalg

COVERED = {
    "lqft_lab.linalg.det",
    "lqft_lab.linalg.inv_ex",
    "lqft_lab.linalg.lu_factor_ex",
    "lqft_lab.linalg.slogdet",
    "lqft_lab.linalg.solve",
    "lqft_lab.linalg.solve_ex",
}

CALLS = {
    "det": lambda A: linalg.det(A),
    "inv_ex": lambda A: linalg.inv_ex(A),
    "lu_factor_ex": lambda A: linalg.lu_factor_ex(A),
    "slogdet": lambda A: linalg.slogdet(A),
    "solve": lambda A: linalg.solve(A, torch.ones(A.shape[:-1], dtype=A.dtype)),
    "solve_ex": lambda A: linalg.solve_ex(A, torch.ones(A.shape[:-1], dtype=A.dtype)),
}


@pytest.fixture
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("n", [4, linalg.PER_MATRIX_ABOVE + 2])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_bad_matrices_get_torchs_error_on_both_paths(two_threads, name, n):
    call = CALLS[name]
    if name != "lu_factor_ex":  # LU of a rectangular matrix is defined
        with pytest.raises(RuntimeError, match="square"):
            call(torch.ones(2, n, n + 1, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Long|dtype|type"):
        call(torch.ones(2, n, n, dtype=torch.int64))


def test_an_empty_batch_gives_empty_results(two_threads):
    sign, logabs = linalg.slogdet(torch.ones(0, 200, 200, dtype=torch.float64))
    assert sign.shape == logabs.shape == (0,)
