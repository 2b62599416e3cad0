"""2D U(1) gauge theory: Wilson action (shape, force, symmetries), gauge observables, HMC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import (
    U1WilsonAction,
    autograd_force,
    gauge_transform,
    plaquette_angles,
    random_gauge_transform,
    wrap_angle,
)
from lqft_lab.analysis import gamma_method
from lqft_lab.exact import u1_plaquette, u1_topological_susceptibility
from lqft_lab.observables import plaquette, topological_charge, wilson_loop, wilson_loop_angles
from lqft_lab.samplers import HMC

F64 = torch.float64
SHAPES = [(4, 4), (3, 5), (2, 2)]

pytestmark = pytest.mark.usefixtures("one_thread")


def _links(shape, batch=3, seed=0, scale=math.pi):
    """Random link angles ``(B, 2, L0, L1)`` uniform in ``[-scale, scale)``, float64."""
    g = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand(batch, 2, *shape, generator=g, dtype=F64) - 1)


def test_plaquette_angle_definition():
    theta = _links((3, 4), batch=2, seed=1)
    P = plaquette_angles(theta)
    assert P.shape == (2, 3, 4)
    L0, L1 = 3, 4
    for x0, x1 in [(0, 0), (2, 3), (1, 2)]:
        expected = (
            theta[:, 0, x0, x1]
            + theta[:, 1, (x0 + 1) % L0, x1]
            - theta[:, 0, x0, (x1 + 1) % L1]
            - theta[:, 1, x0, x1]
        )
        torch.testing.assert_close(P[:, x0, x1], expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
def test_action_shape_dtype_and_plaquette_relation(shape):
    action = U1WilsonAction(beta=1.7)
    theta = _links(shape)
    S = action(theta)
    assert S.shape == (3,) and S.dtype == F64
    V = math.prod(shape)
    torch.testing.assert_close(S, -1.7 * V * plaquette(theta), rtol=0, atol=1e-12)
    assert action(theta.float()).dtype == torch.float32
    cold = torch.zeros(2, 2, *shape, dtype=F64)
    torch.testing.assert_close(action(cold), torch.full((2,), -1.7 * V, dtype=F64))
    torch.testing.assert_close(plaquette(cold), torch.ones(2, dtype=F64))


@pytest.mark.parametrize("shape", SHAPES)
def test_force_matches_autograd_and_finite_differences(shape):
    action = U1WilsonAction(beta=1.3)
    theta = _links(shape, batch=2, seed=2)
    F = action.force(theta)
    assert F.shape == theta.shape
    torch.testing.assert_close(F, autograd_force(action, theta), rtol=0, atol=1e-12)
    torch.testing.assert_close(F, action.autograd_force(theta), rtol=0, atol=1e-12)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 1, 1, 0), (0, 1, shape[0] - 1, shape[1] - 1)]:
        d = torch.zeros_like(theta)
        d[idx] = eps
        fd = -(action(theta + d) - action(theta - d))[idx[0]] / (2 * eps)  # F = -dS/dθ
        assert abs(fd.item() - F[idx].item()) < 1e-8


def test_gauge_transform_formula_and_batch_broadcast():
    theta = _links((4, 3), batch=2, seed=3)
    alpha = _links((4, 3), batch=1, seed=4)[:, 0]  # (1, L0, L1)
    out = gauge_transform(theta, alpha[0])  # (L0, L1): one α for the whole batch
    torch.testing.assert_close(out, gauge_transform(theta, alpha.expand(2, 4, 3)))
    # θ'_0(x) = α(x) + θ_0(x) - α(x + 0̂) at x = (3, 2): x + 0̂ wraps to (0, 2)
    a = alpha[0]
    expected = a[3, 2] + theta[:, 0, 3, 2] - a[0, 2]
    torch.testing.assert_close(out[:, 0, 3, 2], expected, rtol=0, atol=1e-14)
    expected = a[1, 2] + theta[:, 1, 1, 2] - a[1, 0]  # θ'_1 at x = (1, 2): x + 1̂ = (1, 0)
    torch.testing.assert_close(out[:, 1, 1, 2], expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape", [(4, 4), (6, 5)])
def test_gauge_invariance(shape):
    g = torch.Generator().manual_seed(5)
    theta = _links(shape, batch=16, seed=6)
    rotated = random_gauge_transform(theta, generator=g)
    assert (rotated - theta).abs().max() > 1.0  # the links really changed
    action = U1WilsonAction(beta=2.0)
    torch.testing.assert_close(
        plaquette_angles(rotated), plaquette_angles(theta), rtol=0, atol=1e-10
    )
    torch.testing.assert_close(action(rotated), action(theta), rtol=0, atol=1e-10)
    torch.testing.assert_close(plaquette(rotated), plaquette(theta), rtol=0, atol=1e-10)
    torch.testing.assert_close(
        topological_charge(rotated), topological_charge(theta), rtol=0, atol=1e-10
    )
    for R, T in [(1, 1), (2, 1), (1, 3), (3, 2)]:
        torch.testing.assert_close(
            wilson_loop(rotated, R, T), wilson_loop(theta, R, T), rtol=0, atol=1e-10
        )
    # the force is gauge covariant: F_mu(x) depends on plaquettes only
    torch.testing.assert_close(action.force(rotated), action.force(theta), rtol=0, atol=1e-10)
    # same seed, same transformation
    again = random_gauge_transform(theta, generator=torch.Generator().manual_seed(5))
    assert torch.equal(again, rotated)


def test_topological_charge_is_integer_and_takes_several_values():
    theta = _links((6, 6), batch=400, seed=7)
    Q = topological_charge(theta)
    assert Q.shape == (400,) and Q.dtype == F64
    assert (Q - Q.round()).abs().max() < 1e-9
    values = set(Q.round().long().tolist())
    assert len(values) >= 5, values
    # charge conjugation θ → -θ flips Q (wrap of exactly -π has probability zero here)
    torch.testing.assert_close(topological_charge(-theta), -Q, rtol=0, atol=1e-9)
    # translations and 2π shifts of single links leave Q unchanged
    torch.testing.assert_close(
        topological_charge(torch.roll(theta, (2, 1), dims=(2, 3))), Q, rtol=0, atol=1e-9
    )
    shifted = theta.clone()
    shifted[:, 1, 2, 3] += 2 * math.pi
    torch.testing.assert_close(topological_charge(shifted), Q, rtol=0, atol=1e-9)


def test_topological_charge_of_a_unit_instanton():
    # Constant field strength 2π/V: θ_0(x) = -2π x1/(L0 L1) on every x0, plus the twist on
    # the θ_1 links of the last x1-column closing the torus; every plaquette is 2π/V, Q = 1.
    L0, L1 = 4, 6
    V = L0 * L1
    theta = torch.zeros(1, 2, L0, L1, dtype=F64)
    x0 = torch.arange(L0, dtype=F64)
    x1 = torch.arange(L1, dtype=F64)
    theta[0, 0] = -2 * math.pi / V * x1[None, :].expand(L0, L1)
    theta[0, 1, :, L1 - 1] = 2 * math.pi * (x0 + 1) / L0
    torch.testing.assert_close(
        wrap_angle(plaquette_angles(theta)), torch.full((1, L0, L1), 2 * math.pi / V, dtype=F64)
    )
    assert topological_charge(theta).item() == pytest.approx(1.0, abs=1e-12)
    assert topological_charge(-theta).item() == pytest.approx(-1.0, abs=1e-12)


def test_wrap_angle_range():
    phi = torch.tensor([-math.pi, math.pi, 3 * math.pi + 0.1, -7.0, 0.5], dtype=F64)
    w = wrap_angle(phi)
    assert ((w >= -math.pi) & (w < math.pi)).all()
    torch.testing.assert_close(torch.cos(w), torch.cos(phi))
    torch.testing.assert_close(torch.sin(w), torch.sin(phi))
    assert w[1].item() == pytest.approx(-math.pi)


def test_wilson_loops_are_sums_of_enclosed_plaquettes():
    shape = (4, 6)
    theta = _links(shape, batch=2, seed=8)
    P = plaquette_angles(theta)
    torch.testing.assert_close(wilson_loop(theta, 1, 1), plaquette(theta), rtol=0, atol=1e-14)
    for R, T in [(2, 1), (1, 3), (3, 2), (6, 4)]:
        loop = wilson_loop_angles(theta, R, T)
        # Stokes: loop angle at x = Σ of θ_P(x + t 0̂ + r 1̂), t < T (dir 0), r < R (dir 1)
        enclosed = sum(torch.roll(P, (-t, -r), dims=(1, 2)) for t in range(T) for r in range(R))
        torch.testing.assert_close(loop, enclosed, rtol=0, atol=1e-12)
    # the loop around the whole torus encloses every plaquette: total angle 0
    torch.testing.assert_close(wilson_loop(theta, 6, 4), torch.ones(2, dtype=F64))


def test_repr_and_params():
    action = U1WilsonAction(2)
    assert repr(action) == "U1WilsonAction(beta=2.0)"
    assert action.params() == {"beta": 2.0}
    assert U1WilsonAction(np.float32(0.5)).beta == 0.5


@pytest.mark.parametrize("beta", [-0.1, float("nan"), float("inf")])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        U1WilsonAction(beta)


def test_bad_inputs():
    action = U1WilsonAction(1.0)
    with pytest.raises(TypeError, match="beta"):
        U1WilsonAction("1.0")
    with pytest.raises(ValueError, match=r"\(B, 2, L0, L1\)"):
        action(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, 2, L0, L1\)"):
        action(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="float"):
        action(torch.zeros(2, 2, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=">= 2"):
        topological_charge(torch.zeros(2, 2, 1, 4))
    with pytest.raises(TypeError, match="Tensor"):
        plaquette(np.zeros((2, 2, 4, 4)))
    theta = torch.zeros(2, 2, 4, 6)
    with pytest.raises(ValueError, match="alpha"):
        gauge_transform(theta, torch.zeros(3, 4, 6))
    with pytest.raises(ValueError, match="alpha"):
        gauge_transform(theta, torch.zeros(6, 4))
    with pytest.raises(TypeError, match="alpha"):
        gauge_transform(theta, 0.0)
    with pytest.raises(ValueError, match="R must"):
        wilson_loop(theta, 7, 1)
    with pytest.raises(ValueError, match="T must"):
        wilson_loop(theta, 1, 0)
    with pytest.raises(ValueError, match="R must"):
        wilson_loop(theta, 1.0, 1)


def test_hmc_on_link_angles_reproduces_exact_plaquette_and_chi_t():
    """HMC (unchanged, generic in the field shape) on ``(B, 2, 4, 4)`` angles at β = 1.

    Hot start; 40 trajectories are dropped for thermalisation (the plaquette relaxes in a few
    trajectories at β = 1). Errors are Γ-method errors with the 128 chains as replicas
    (τ_int ≈ 1 for the plaquette, ≈ 0.7 for Q² here); each 4σ band is far narrower than the
    distance to neighbouring couplings (β = 0.9 has plaquette 0.41).
    """
    beta, L = 1.0, 4
    g = torch.Generator().manual_seed(11)
    hmc = HMC(U1WilsonAction(beta), step_size=0.2, n_steps=5, jitter=0.2)
    state = hmc.init(_links((L, L), batch=128, seed=12))
    plaq, chi, accepted = [], [], []
    for i in range(440):
        state, info = hmc.step(state, generator=g)
        if i >= 40:
            plaq.append(plaquette(state.x))
            chi.append(topological_charge(state.x) ** 2 / L**2)
            accepted.append(info.accepted.double().mean().item())
    assert np.mean(accepted) > 0.8
    for series, exact in [
        (plaq, u1_plaquette(beta, L)),
        (chi, u1_topological_susceptibility(beta, L)),
    ]:
        res = gamma_method(torch.stack(series))  # (N, R): time first, chains as replicas
        assert abs(res.value - exact) < 4 * res.error, (res.value, res.error, exact)
        assert res.error < 0.02 * exact  # the check has power: 4σ is under 8% of the value
