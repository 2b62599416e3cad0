"""Batched conjugate gradient on ``D†D`` and its even/odd form, against dense solves."""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions import CGNotConverged, CGResult, WilsonDirac, conjugate_gradient

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # complex32 right-hand sides are made to be refused; torch warns on creating them
    pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental"),
]

F64, C128 = torch.float64, torch.complex128


def random_links(B, L, seed):
    g = torch.Generator().manual_seed(seed)
    return math.pi * (2 * torch.rand(B, 2, L, L, generator=g, dtype=F64) - 1)


def random_fermion(B, L, seed, dtype=C128):
    return torch.randn(B, L, L, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def normal_operator(D, theta):
    U = D.links(theta)
    return lambda v: D._apply_dagger(U, D._apply(U, v))


def schur_normal_operator(D, theta):
    U = D.links(theta)
    return lambda v: D._schur(U, D._schur(U, v, dagger=False), dagger=True)


@pytest.mark.parametrize("L, kappa", [(4, 0.25), (6, 0.24), (6, 0.26)])
def test_cg_solves_the_normal_equations_like_a_dense_solve(L, kappa):
    theta = random_links(3, L, seed=L)
    D = WilsonDirac(kappa)
    b = random_fermion(3, L, seed=10 + L)
    result = conjugate_gradient(normal_operator(D, theta), b, tol=1e-10)
    assert isinstance(result, CGResult)
    dense = D.dense(theta)
    A = dense.mH @ dense
    x_dense = torch.linalg.solve(A, b.reshape(3, -1, 1))[..., 0]
    # the true relative residual is what CG reports, and it is below tol
    true_res = (A @ result.x.reshape(3, -1, 1))[..., 0] - b.reshape(3, -1)
    true_res = true_res.norm(dim=1) / b.reshape(3, -1).norm(dim=1)
    torch.testing.assert_close(result.residual, true_res, rtol=1e-3, atol=1e-16)
    assert bool(result.converged.all()) and float(result.residual.max()) <= 1e-10
    # error bounded by cond(A) · residual
    cond = torch.linalg.cond(A)
    err = (result.x.reshape(3, -1) - x_dense).norm(dim=1) / x_dense.norm(dim=1)
    assert bool((err <= 2 * cond * result.residual).all()), (err, cond)
    n = 2 * L * L
    assert bool((result.iterations >= 1).all()) and bool((result.iterations <= 2 * n).all())
    print(f"L={L} kappa={kappa}: iterations {result.iterations.tolist()}, cond {cond.tolist()}")


def test_even_odd_solve_gives_the_same_solution_with_fewer_iterations():
    """Solve ``D x = b`` twice: by CG on ``D†D`` (``x = (D†D)^{-1} D† b``) and even/odd,
    ``M x_e = b_e - D_eo b_o`` by CG on ``M†M``, then ``x_o = b_o - D_oe x_e``."""
    L, kappa = 6, 0.25
    theta = random_links(3, L, seed=20)
    D = WilsonDirac(kappa)
    U = D.links(theta)
    b = random_fermion(3, L, seed=21)
    full = conjugate_gradient(normal_operator(D, theta), D._apply_dagger(U, b), tol=1e-12)

    even = D.parity_mask(L, L)
    odd = 1 - even
    b_e, b_o = even * b, odd * b
    rhs_e = b_e - even * (-kappa * D._hop(U, b_o))  # b_e - D_eo b_o
    eo = conjugate_gradient(
        schur_normal_operator(D, theta), D._schur(U, rhs_e, dagger=True), tol=1e-12
    )
    x_e = eo.x
    x_o = b_o - odd * (-kappa * D._hop(U, x_e))  # x_o = b_o - D_oe x_e
    x = x_e + x_o
    torch.testing.assert_close(x, full.x, atol=1e-9, rtol=0)
    x_dense = torch.linalg.solve(D.dense(theta), b.reshape(3, -1, 1))[..., 0]
    torch.testing.assert_close(x.reshape(3, -1), x_dense, atol=1e-9, rtol=0)
    print(f"iterations: full {full.iterations.tolist()}, even/odd {eo.iterations.tolist()}")
    assert bool((eo.iterations < 0.75 * full.iterations).all())


def test_per_sample_convergence_freezes_finished_samples():
    """A zero right-hand side converges at once (x = 0), an easy sample before a hard one,
    and every sample keeps its own iteration count."""
    L = 4
    theta = random_links(3, L, seed=30)
    theta[0] = 0.0  # the free field: few distinct eigenvalues, CG finishes early
    b = random_fermion(3, L, seed=31)
    b[2] = 0.0
    result = conjugate_gradient(normal_operator(WilsonDirac(0.2), theta), b, tol=1e-10)
    assert result.iterations[2] == 0 and bool((result.x[2] == 0).all())
    assert result.iterations[0] < result.iterations[1]
    alone = conjugate_gradient(normal_operator(WilsonDirac(0.2), theta[1:2]), b[1:2], tol=1e-10)
    torch.testing.assert_close(result.x[1:2], alone.x, rtol=0, atol=0)  # unaffected by others
    assert int(alone.iterations) == int(result.iterations[1])


def test_starting_guess_is_used():
    theta = random_links(2, 4, seed=40)
    A = normal_operator(WilsonDirac(0.25), theta)
    b = random_fermion(2, 4, seed=41)
    first = conjugate_gradient(A, b, tol=1e-12)
    again = conjugate_gradient(A, b, tol=1e-10, x0=first.x)
    assert bool((again.iterations == 0).all())
    torch.testing.assert_close(again.x, first.x, rtol=0, atol=0)


def test_raises_when_max_iter_is_too_small():
    theta = random_links(2, 4, seed=50)
    b = random_fermion(2, 4, seed=51)
    with pytest.raises(CGNotConverged, match=r"max_iter=3\b.*samples \[0, 1\]") as err:
        conjugate_gradient(normal_operator(WilsonDirac(0.25), theta), b, max_iter=3)
    assert isinstance(err.value, RuntimeError)
    assert bool((err.value.result.iterations == 3).all())
    quiet = conjugate_gradient(
        normal_operator(WilsonDirac(0.25), theta), b, max_iter=3, raise_on_failure=False
    )
    assert not bool(quiet.converged.any()) and bool((quiet.residual > 1e-10).all())


def test_complex64_stalls_above_a_tight_tolerance():
    """The documented reason to solve in complex128: complex64 cannot reach 1e-10."""
    theta = random_links(2, 4, seed=60)
    D = WilsonDirac(0.25)
    U = D.links(theta.float())
    b = random_fermion(2, 4, seed=61, dtype=torch.complex64)
    apply = lambda v: D._apply_dagger(U, D._apply(U, v))  # noqa: E731
    with pytest.raises(CGNotConverged):
        conjugate_gradient(apply, b, tol=1e-10, max_iter=200)
    loose = conjugate_gradient(apply, b, tol=1e-5)
    assert bool(loose.converged.all())


def test_refuses_half_precision_and_indefinite_operators():
    b = random_fermion(1, 4, seed=70)
    with pytest.raises(ValueError, match="half precision"):
        conjugate_gradient(lambda v: v, b.to(torch.complex32))
    with pytest.raises(ValueError, match="half precision"):
        conjugate_gradient(lambda v: v, b.real.half())
    with pytest.raises(ValueError, match="apply_A is not positive definite"):
        conjugate_gradient(lambda v: -v, b)


def test_stagnation_at_the_rounding_floor_stops_early_and_says_why():
    """A = Q diag(λ) Qᵀ with λ between 0.1 and 1, but for one near-zero mode λ = 1e-9 in
    sample 0 (cond 1e10, what an exceptional configuration does to D†D). CG finds the
    cluster quickly, but in float64 the rounding of A x alone keeps |b - A x| / |b| near
    3e-8 for sample 0, far above tol = 1e-10 (the 3e-8 of a full-mode Schwinger run). It
    must stop after a restart that no longer lowers the residual (measured: 114 iterations)
    instead of running on to max_iter = 5000, and say why; sample 1 converges beside it."""
    n = 64
    g = torch.Generator().manual_seed(80)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    lam = torch.logspace(0, -1, n, dtype=F64).repeat(2, 1)
    lam[0, -1] = 1e-9
    A = Q @ torch.diag_embed(lam) @ Q.T  # (2, n, n)
    apply = lambda v: (A @ v.unsqueeze(-1)).squeeze(-1)  # noqa: E731
    b = torch.randn(2, n, generator=g, dtype=F64)
    result = conjugate_gradient(apply, b, tol=1e-10, max_iter=5000, raise_on_failure=False)
    assert result.stagnated.tolist() == [True, False]
    assert result.converged.tolist() == [False, True]
    assert result.iterations[0] < 500, result.iterations
    assert 1e-9 < result.residual[0] < 1e-6, result.residual
    with pytest.raises(CGNotConverged, match=r"stagnated.*cond\(A\) ~ \d+e\+\d\d"):
        conjugate_gradient(apply, b, tol=1e-10, max_iter=5000)
