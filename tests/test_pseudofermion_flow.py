"""The gauge-covariant pseudofermion flow ``q(φ | θ)`` (notebook 04, part 2): gauge covariance
of every layer, invertibility, the log-Jacobian against the autograd Jacobian's ``slogdet``
on 2×2 and 4×4, the ``D†`` start, and ``q`` as the Gaussian ``CN(0, G G†)``."""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions import gauge_transform
from lqft_lab.actions.wilson_dirac import WilsonDirac
from lqft_lab.flows.pseudofermion import (
    CovariantCouplingLayer,
    HopLayer,
    PseudofermionFlow,
    SpinScaleLayer,
    dirac_dagger_hops,
)

F64, C128 = torch.float64, torch.complex128


def random_links(B, L0, L1, seed):
    g = torch.Generator().manual_seed(seed)
    return 2 * math.pi * torch.rand(B, 2, L0, L1, generator=g, dtype=F64) - math.pi


def random_fermion(B, L0, L1, seed):
    return torch.randn(B, L0, L1, 2, generator=torch.Generator().manual_seed(seed), dtype=C128)


def randomize(module, seed, scale=0.3):
    """Every parameter drawn afresh (the conditioners' last layers start at zero, which
    would make a covariance test blind to them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


LAYERS = {
    "hop_even": lambda: HopLayer(0, hidden=(4,)),
    "hop_odd": lambda: HopLayer(1, hidden=(4,)),
    "scale": lambda: SpinScaleLayer(hidden=(4,)),
    "coupling_even": lambda: CovariantCouplingLayer(0, hidden=(4,)),
    "coupling_odd": lambda: CovariantCouplingLayer(1, hidden=(4,)),
    "flow": lambda: PseudofermionFlow((4, 6), n_blocks=2, hidden=(4,), couplings=1),
}


def _apply(layer, phi, theta, reverse=False):
    if isinstance(layer, PseudofermionFlow):
        return layer.reverse(phi, theta) if reverse else layer(phi, theta)
    return layer.reverse(phi, theta) if reverse else layer(phi, theta)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_is_gauge_covariant(name):
    """``F_{θ^α}(e^{iα} φ) = e^{iα} F_θ(φ)`` to rounding, both ways, and ``log J`` invariant."""
    layer = randomize(LAYERS[name]().double(), seed=1)
    theta, phi = random_links(3, 4, 6, seed=2), random_fermion(3, 4, 6, seed=3)
    alpha = 2 * math.pi * torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    phase = torch.polar(torch.ones_like(alpha), alpha)[..., None]
    for reverse in (False, True):
        out, logJ = _apply(layer, phi, theta, reverse)
        out_g, logJ_g = _apply(layer, phase * phi, gauge_transform(theta, alpha), reverse)
        torch.testing.assert_close(out_g, phase * out, atol=1e-13, rtol=1e-12)  # rounding
        torch.testing.assert_close(logJ_g, logJ, atol=1e-12, rtol=0)
        assert (out - phi).abs().max() > 0.1  # the layer does something


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_inverts(name):
    # scale 0.1: products of unit-triangular hops with O(1) coefficients are ill-conditioned
    # (their inverse amplifies rounding by their condition number), which is not under test
    layer = randomize(LAYERS[name]().double(), seed=5, scale=0.1)
    theta, chi = random_links(2, 4, 6, seed=6), random_fermion(2, 4, 6, seed=7)
    phi, logJ = _apply(layer, chi, theta)
    back, logJ_inv = _apply(layer, phi, theta, reverse=True)
    torch.testing.assert_close(back, chi, atol=1e-12, rtol=0)
    torch.testing.assert_close(logJ_inv, -logJ, atol=1e-12, rtol=0)


def _real_jacobian_logdet(flow, chi, theta):
    """``log|det|`` of the real ``2N × 2N`` Jacobian of ``χ → φ``, by autograd."""
    shape = chi.shape[1:]

    def f(x):
        c = torch.view_as_complex(x.reshape(*shape, 2))[None]
        return torch.view_as_real(flow(c, theta[:1])[0][0]).flatten()

    J = torch.autograd.functional.jacobian(f, torch.view_as_real(chi[0]).flatten())
    return torch.linalg.slogdet(J)[1]


@pytest.mark.parametrize("L", [2, 4])
def test_log_jacobian_against_autograd(L):
    """With the nonlinear couplings too: their conditioners read the other parity, so the
    real Jacobian is block triangular with the scales on its diagonal."""
    flow = PseudofermionFlow((L, L), n_blocks=2, hidden=(4,), couplings=1)
    randomize(flow, seed=8, scale=0.1)
    theta, chi = random_links(1, L, L, seed=9), random_fermion(1, L, L, seed=10)
    _, logJ = flow(chi, theta)
    assert abs(logJ.item()) > 0.1  # the scales contribute
    assert logJ.item() == pytest.approx(_real_jacobian_logdet(flow, chi, theta).item(), abs=1e-10)


def test_the_dirac_dagger_start_is_d_dagger_up_to_the_two_hop_term():
    """With ``init_kappa`` the first block is ``(1 + A)(1 + B)`` with ``A``, ``B`` the even-
    and odd-site hops of ``D†``; so ``φ - D†χ = A B χ``, the two-hop term only."""
    kappa = 0.27
    flow = PseudofermionFlow((4, 6), n_blocks=1, hidden=(4,), init_kappa=kappa)
    theta, chi = random_links(2, 4, 6, seed=11), random_fermion(2, 4, 6, seed=12)
    phi, logJ = flow(chi, theta)
    _, hop_odd, hop_even = flow.layers
    two_hop = hop_even._shift(hop_odd._shift(chi, theta), theta)
    expected = WilsonDirac(kappa).apply_dagger(theta, chi) + two_hop
    torch.testing.assert_close(phi, expected, atol=1e-13, rtol=0)
    assert torch.all(logJ == 0)
    assert two_hop.abs().max() > 0.01  # κ² is not negligible: the residual the flow learns
    torch.testing.assert_close(dirac_dagger_hops(0.0), torch.zeros(4, 2, 2, dtype=C128))


def test_couplings_start_as_the_identity_and_make_q_non_gaussian():
    """A new coupling pair leaves the flow as it was; trained (here: random) couplings are
    no longer complex-linear in ``χ``, ``F(2χ) ≠ 2F(χ)``, while the linear flow is."""
    theta, chi = random_links(2, 4, 4, seed=16), random_fermion(2, 4, 4, seed=17)
    linear = randomize(PseudofermionFlow((4, 4), n_blocks=1, hidden=(4,)), seed=18, scale=0.1)
    coupled = PseudofermionFlow((4, 4), n_blocks=1, hidden=(4,), couplings=1)
    coupled.load_state_dict(linear.state_dict(), strict=False)
    torch.testing.assert_close(coupled(chi, theta), linear(chi, theta), atol=0, rtol=0)
    torch.testing.assert_close(linear(2 * chi, theta)[0], 2 * linear(chi, theta)[0])
    randomize(coupled, seed=19, scale=0.1)
    gap = (coupled(2 * chi, theta)[0] - 2 * coupled(chi, theta)[0]).abs().max()
    assert gap > 1e-3, gap


def test_q_is_the_gaussian_of_the_flow_matrix():
    """Every layer is complex-linear in ``φ`` given ``θ``: ``φ = G χ``, so
    ``log q(φ | θ) = -φ†(G G†)^{-1}φ - log det(G G†) - N log π``, with ``G`` read off the
    flow column by column; and ``sample`` agrees with ``log_prob``."""
    L = 4
    flow = randomize(PseudofermionFlow((L, L), n_blocks=2, hidden=(4,)), seed=13, scale=0.1)
    theta = random_links(1, L, L, seed=14)
    n = 2 * L * L
    basis = torch.eye(n, dtype=C128).reshape(n, L, L, 2)
    G = flow(basis, theta.expand(n, -1, -1, -1))[0].reshape(n, n).T  # column j = G e_j
    phi, logq = flow.sample(theta.expand(3, -1, -1, -1), torch.Generator().manual_seed(15))
    cov = G @ G.conj().T
    v = phi.reshape(3, n)
    quad = (v.conj() * torch.linalg.solve(cov, v.T).T).real.sum(dim=1)
    expected = -quad - torch.linalg.slogdet(cov)[1] - n * math.log(math.pi)
    torch.testing.assert_close(logq, expected, atol=1e-9, rtol=0)
    torch.testing.assert_close(
        flow.log_prob(theta.expand(3, -1, -1, -1), phi), logq, atol=1e-10, rtol=0
    )
