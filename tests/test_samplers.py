"""Samplers against exact results, and the sampler / run_chain contracts.

Exact anchors: the free field (λ = 0) from :mod:`lqft_lab.exact`; φ⁴ with λ > 0 on a 2×2
lattice by numerical quadrature (below); a flow that is exactly the free-field Gaussian.
Statistical checks use 4σ with σ from the Γ-method over all chains (autocorrelation-aware),
and every seed is fixed, so a failure is reproducible.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from torch import nn

from lqft_lab.actions.phi4 import Phi4Action
from lqft_lab.analysis import gamma_method
from lqft_lab.exact import free_field_chi2, free_field_log_z, free_field_phi2
from lqft_lab.flows.base import Flow, FlowModel
from lqft_lab.flows.priors import NormalPrior
from lqft_lab.flows.realnvp import build_real_nvp
from lqft_lab.samplers import (
    HMC,
    FlowMetropolis,
    FlowMetropolisWithLocal,
    LocalMetropolis,
    independence_metropolis,
    run_chain,
)

F64 = torch.float64
OBSERVABLES = {
    "phi2": lambda x: x.pow(2).flatten(1).mean(1),  # site average of φ²
    "M": lambda x: x.flatten(1).mean(1),  # magnetisation per site
    "M2": lambda x: x.flatten(1).mean(1) ** 2,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _untrained_flow(L, seed=0):
    torch.manual_seed(seed)  # weight init only; sampling uses explicit generators
    return build_real_nvp(L=L, n_layers=2, hidden=(4,)).double()


def _estimates(chain, V):
    """Γ-method ⟨φ²⟩ and χ₂ = V(⟨M²⟩ - ⟨M⟩²) from the (T, B) series of a chain."""
    phi2 = gamma_method(chain.observables["phi2"].numpy())
    data = torch.stack([chain.observables["M"], chain.observables["M2"]], -1).numpy()  # (T,B,2)
    chi2 = gamma_method(data, f=lambda a: V * (a[1] - a[0] ** 2))
    return phi2, chi2


def _assert_exact(res, exact, max_rel_error, what):
    assert res.window_converged, what
    # power: a 4σ window narrower than 4 * max_rel_error of the value
    assert res.error < max_rel_error * abs(exact), (what, res)
    assert abs(res.value - exact) < 4 * res.error, (what, res.value, res.error, exact)


def _assert_free_field(chain, shape, m2, max_rel_error=0.03):
    phi2, chi2 = _estimates(chain, math.prod(shape))
    _assert_exact(phi2, free_field_phi2(shape, m2), max_rel_error, "phi2")
    _assert_exact(chi2, free_field_chi2(shape, m2), max_rel_error, "chi2")


# ---------------------------------------------------------------- free field, 4x4, m² = 1

FREE = Phi4Action(m2=1.0, lam=0.0)
LOCAL_SAMPLERS = {
    "local": LocalMetropolis(FREE, delta=0.8),
    # jitter: with a fixed trajectory length some free-field modes have ωτ ≈ π and HMC is
    # then not ergodic (Mackenzie 1989); randomising ε restores ergodicity.
    "hmc-leapfrog": HMC(FREE, 0.2, 5, integrator="leapfrog", jitter=0.2),
    "hmc-omelyan": HMC(FREE, 0.33, 3, integrator="omelyan", jitter=0.2),
}


@pytest.mark.parametrize("name", LOCAL_SAMPLERS)
def test_free_field_exact(name):
    x0 = torch.zeros(64, 4, 4, dtype=F64)
    g = torch.Generator().manual_seed(10)
    chain = run_chain(LOCAL_SAMPLERS[name], x0, 1000, g, OBSERVABLES, thermalize=100)
    assert 0.4 < chain.acceptance < 1.0
    _assert_free_field(chain, (4, 4), 1.0)


@pytest.mark.slow
def test_free_field_exact_with_trained_flow():
    g = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    model = build_real_nvp(L=4, n_layers=4, hidden=(8, 8))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):  # reverse KL, up to log Z
        x, logq = model.sample(128, generator=g)
        loss = (logq + FREE(x)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sampler = FlowMetropolis(model.double(), FREE, batch_size=64)
    chain = run_chain(sampler, None, 600, g, OBSERVABLES, thermalize=100)
    assert 0.4 < chain.acceptance < 0.95  # imperfect, yet the chain must be exact
    _assert_free_field(chain, (4, 4), 1.0, max_rel_error=0.05)


def test_free_field_exact_with_untrained_flow():
    """A deliberately bad flow: the flow alone is far off, the Markov chain is not."""
    shape, m2 = (2, 2), 1.0
    action = Phi4Action(m2=m2, lam=0.0)
    model = _untrained_flow(2)
    g = torch.Generator().manual_seed(12)
    chain = run_chain(FlowMetropolis(model, action, 64), None, 1500, g, OBSERVABLES, 100)
    assert 0.01 < chain.acceptance < 0.2
    _assert_free_field(chain, shape, m2, max_rel_error=0.05)
    with torch.no_grad():  # the flow's own samples are biased by many σ
        x, _ = model.sample(20000, generator=g)
    raw = gamma_method(OBSERVABLES["phi2"](x).numpy())
    assert abs(raw.value - free_field_phi2(shape, m2)) > 20 * raw.error


class _ExactGaussianLayer(nn.Module):
    """``x = A z`` with ``A A^T`` the free-field covariance ``(2K)⁻¹``: then ``q = p``."""

    def __init__(self, shape, m2):
        super().__init__()
        V = math.prod(shape)
        basis = torch.eye(V, dtype=F64).reshape(V, *shape)  # unit fields
        K = (2 * len(shape) + m2) * basis - Phi4Action.neighbour_sum(basis)  # rows K e_i
        self.register_buffer("A", torch.linalg.cholesky(torch.linalg.inv(2 * K.reshape(V, V))))

    def forward(self, z):
        x = (z.flatten(1) @ self.A.T).reshape(z.shape)
        return x, self.A.diagonal().log().sum().expand(z.shape[0])

    def reverse(self, x):
        zT = torch.linalg.solve_triangular(self.A, x.flatten(1).T, upper=False)  # (V, B)
        return zT.T.reshape(x.shape), -self.A.diagonal().log().sum().expand(x.shape[0])


def test_exact_flow_accepts_everything_and_weighs_log_z():
    shape, m2 = (4, 4), 0.5
    model = FlowModel(NormalPrior(shape), Flow([_ExactGaussianLayer(shape, m2)])).double()
    sampler = FlowMetropolis(model, Phi4Action(m2=m2, lam=0.0), batch_size=32)
    chain = run_chain(sampler, None, 100, torch.Generator().manual_seed(13), OBSERVABLES)
    assert chain.acceptance == 1.0
    # q = e^{-S}/Z exactly, so every log weight logp - logq equals log Z
    logw = chain.log_weights
    assert logw.shape == (100 * 32,)
    torch.testing.assert_close(logw, torch.full_like(logw, free_field_log_z(shape, m2)))
    torch.testing.assert_close(chain.final.logw, logw[-32:])


# ------------------------------------------- interacting φ⁴ on a 2x2 lattice, by quadrature


def _phi4_2x2_quadrature(m2, lam, R=5.0, n=401):
    """Exact ⟨φ_x²⟩ and ⟨M²⟩ on the periodic 2×2 lattice (V = 4).

    There S = -4 s_e s_o + Σ_x [(4 + m²) φ_x² + λ φ_x⁴] with s_e, s_o the sums over the
    two even and two odd sites, so the 4D integral is a 2D sum over (s_e, s_o) of
    g(s) = ∫ da e^{-f(a)} e^{-f(s-a)}, a convolution on a uniform grid. The integrand is
    smooth and decays like e^{-λφ⁴}, so the rectangle rule converges spectrally (checked
    against the free field below and by halving the spacing: agreement to 1e-12).
    """
    x = np.linspace(-R, R, n)
    E = np.exp(-((4 + m2) * x**2 + lam * x**4))
    s = 2 * x[0] + (x[1] - x[0]) * np.arange(2 * n - 1)  # grid of s_e and s_o
    with np.errstate(divide="ignore"):
        log_g = np.log(np.convolve(E, E))
        log_g2 = np.log(np.convolve(x**2 * E, E))  # one factor φ_a² inside
    log_k = 4 * np.outer(s, s)
    log_w = log_g[:, None] + log_g[None, :] + log_k
    log_z = logsumexp(log_w)
    phi2 = np.exp(logsumexp(log_g2[:, None] + log_g[None, :] + log_k) - log_z)
    m_sq = np.exp(logsumexp(log_w, b=((s[:, None] + s[None, :]) / 4) ** 2) - log_z)
    return float(phi2), float(m_sq)


def test_quadrature_reproduces_free_field():
    phi2, m_sq = _phi4_2x2_quadrature(1.0, 0.0)
    assert phi2 == pytest.approx(free_field_phi2((2, 2), 1.0), rel=1e-10)
    assert m_sq == pytest.approx(free_field_chi2((2, 2), 1.0) / 4, rel=1e-10)
    assert _phi4_2x2_quadrature(-1.0, 1.0, R=6.0, n=801) == pytest.approx(
        _phi4_2x2_quadrature(-1.0, 1.0), rel=1e-10
    )


PHI4 = Phi4Action(m2=-1.0, lam=1.0)  # a shallow double well: non-Gaussian
PHI4_SAMPLERS = {
    "local": lambda: (LocalMetropolis(PHI4, delta=1.0), torch.zeros(64, 2, 2, dtype=F64)),
    "hmc-leapfrog": lambda: (HMC(PHI4, 0.2, 5, jitter=0.2), torch.zeros(64, 2, 2, dtype=F64)),
    "hmc-omelyan": lambda: (
        HMC(PHI4, 0.4, 3, integrator="omelyan", jitter=0.2),
        torch.zeros(64, 2, 2, dtype=F64),
    ),
    "flow-untrained": lambda: (FlowMetropolis(_untrained_flow(2), PHI4, 64), None),
    "flow-untrained-prefetch": lambda: (FlowMetropolis(_untrained_flow(2), PHI4, 64, 16), None),
    "flow-untrained-with-local": lambda: (
        FlowMetropolisWithLocal(
            _untrained_flow(2), PHI4, LocalMetropolis(PHI4, delta=1.0), batch_size=64, prefetch=4
        ),
        None,
    ),
}


@pytest.mark.parametrize("name", PHI4_SAMPLERS)
def test_phi4_2x2_exact(name):
    sampler, x0 = PHI4_SAMPLERS[name]()
    chain = run_chain(sampler, x0, 1500, torch.Generator().manual_seed(14), OBSERVABLES, 100)
    phi2, m_sq = _phi4_2x2_quadrature(PHI4.m2, PHI4.lam)
    _assert_exact(gamma_method(chain.observables["phi2"].numpy()), phi2, 0.03, "phi2")
    _assert_exact(gamma_method(chain.observables["M2"].numpy()), m_sq, 0.03, "M2")


def test_independence_metropolis_stream_phi4_2x2_exact():
    model = _untrained_flow(2)
    g = torch.Generator().manual_seed(15)
    with torch.no_grad():
        x, logq = model.sample(200_000, generator=g)
    index, accepted = independence_metropolis(-PHI4(x), logq, g)
    assert 0.01 < float(accepted.float().mean()) < 0.2
    chain = x[index]
    phi2, m_sq = _phi4_2x2_quadrature(PHI4.m2, PHI4.lam)
    _assert_exact(gamma_method(OBSERVABLES["phi2"](chain).numpy()), phi2, 0.03, "phi2")
    _assert_exact(gamma_method(OBSERVABLES["M2"](chain).numpy()), m_sq, 0.03, "M2")


# ------------------------------------------------------------- independence_metropolis


def test_independence_metropolis_accepts_everything_when_q_is_p():
    logp = torch.randn(1000, generator=torch.Generator().manual_seed(16), dtype=F64)
    index, accepted = independence_metropolis(logp, logp.clone())
    assert bool(accepted.all())
    assert torch.equal(index, torch.arange(1000))


def test_independence_metropolis_matches_naive_loop_and_is_fast():
    n = 100_000
    g = torch.Generator().manual_seed(17)
    logp, logq = torch.randn(n, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)
    logp[5] = float("nan")  # a broken proposal is never accepted
    start = time.perf_counter()
    index, accepted = independence_metropolis(logp, logq, torch.Generator().manual_seed(18))
    assert time.perf_counter() - start < 1.0  # measured ≈ 0.05 s
    log_u = torch.rand(n, generator=torch.Generator().manual_seed(18), dtype=F64).log()
    logw, current, ref = (logp - logq).tolist(), 0, [0]
    for i in range(1, n):
        if log_u[i].item() < logw[i] - logw[current]:
            current = i
        ref.append(current)
    assert index.tolist() == ref
    assert bool(accepted[0]) and not bool(accepted[5])
    assert torch.equal(accepted[1:], index[1:] != index[:-1])


@pytest.mark.parametrize("shapes", [((10,), (9,)), ((2, 5), (2, 5)), ((0,), (0,))])
def test_independence_metropolis_rejects_bad_shapes(shapes):
    with pytest.raises(ValueError):
        independence_metropolis(torch.zeros(shapes[0]), torch.zeros(shapes[1]))


# ---------------------------------------------------------------- local Metropolis specifics


def test_local_metropolis_acceptance_tends_to_one_for_small_delta():
    x0 = torch.randn(16, 4, 4, generator=torch.Generator().manual_seed(19), dtype=F64) * 0.3
    acc = {}
    for delta in (1e-6, 1e-2, 0.5, 2.0):
        chain = run_chain(LocalMetropolis(PHI4, delta=delta), x0, 20, torch.Generator())
        acc[delta] = chain.acceptance
    assert acc[1e-6] > 0.9999
    assert acc[1e-6] >= acc[1e-2] > acc[0.5] > acc[2.0]


def test_local_metropolis_n_hits_and_cached_action():
    sampler = LocalMetropolis(PHI4, delta=0.5, n_hits=3)
    state = sampler.init(torch.zeros(8, 4, 6, dtype=F64))
    for _ in range(5):
        state, info = sampler.step(state, torch.Generator().manual_seed(20))
    torch.testing.assert_close(state.S, PHI4(state.x))
    assert info.accepted.dtype == F64 and bool(((info.accepted >= 0) & (info.accepted <= 1)).all())


# ------------------------------------------------------------------------ sampler contract

CONTRACT = {
    "local": lambda dt: (LocalMetropolis(PHI4, 0.8), torch.zeros(8, 4, 4, dtype=dt)),
    "hmc": lambda dt: (HMC(PHI4, 0.1, 4, jitter=0.1), torch.zeros(8, 4, 4, dtype=dt)),
    "hmc-omelyan": lambda dt: (HMC(PHI4, 0.2, 2, "omelyan"), torch.zeros(8, 4, 4, dtype=dt)),
    "flow": lambda dt: (FlowMetropolis(_untrained_flow(4).to(dt), PHI4, 8), None),
}


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("name", CONTRACT)
def test_sampler_contract(name, dtype):
    sampler, x0 = CONTRACT[name](dtype)
    state = sampler.init(x0, generator=torch.Generator().manual_seed(21))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.x = state.x
    x_before = state.x.clone()
    new, info = sampler.step(state, torch.Generator().manual_seed(22))
    torch.testing.assert_close(state.x, x_before)  # the input state is not modified
    assert type(new) is type(state) and dataclasses.is_dataclass(info)
    assert new.x.shape == (8, 4, 4) and new.x.dtype == dtype
    assert info.accepted.shape == (8,)
    again, _ = sampler.step(state, torch.Generator().manual_seed(22))
    assert torch.equal(again.x, new.x)  # reproducible from the generator alone
    if hasattr(new, "S"):  # cached quantities describe the current fields
        torch.testing.assert_close(new.S, PHI4(new.x))
    else:
        torch.testing.assert_close(new.logp, -PHI4(new.x))
        with torch.no_grad():
            torch.testing.assert_close(new.logq, sampler.model.log_prob(new.x))


def test_run_chain_shapes_thinning_and_continuation():
    sampler = HMC(PHI4, 0.1, 4)
    x0 = torch.zeros(5, 4, 4, dtype=F64)
    chain = run_chain(sampler, x0, 10, torch.Generator().manual_seed(23), OBSERVABLES, 3, 2)
    assert set(chain.observables) == set(OBSERVABLES)
    assert all(v.shape == (5, 5) for v in chain.observables.values())
    assert chain.accepted.shape == (5, 5) and chain.accepted.dtype == F64
    assert set(np.unique(chain.accepted.numpy() * 2)) <= {0.0, 1.0, 2.0}  # blocks of 2 steps
    assert chain.acceptance == pytest.approx(float(chain.accepted.mean()))
    assert chain.log_weights is None  # only flow samplers report proposal weights
    torch.testing.assert_close(chain.observables["phi2"][-1], OBSERVABLES["phi2"](chain.final.x))
    # 13 steps in one go == 6 steps, then 7 more from chain.final, with one generator
    g = torch.Generator().manual_seed(24)
    half = run_chain(sampler, x0, 6, g)
    rest = run_chain(sampler, half.final, 7, g)
    whole = run_chain(sampler, x0, 13, torch.Generator().manual_seed(24))
    assert torch.equal(rest.final.x, whole.final.x)


def test_run_chain_callback_and_progress():
    calls = []
    sampler = LocalMetropolis(PHI4, 0.8)
    x0 = torch.zeros(4, 4, 4)
    run_chain(
        sampler,
        x0,
        10,
        None,
        OBSERVABLES,
        thermalize=3,
        callback=lambda step, summary: calls.append((step, summary)),
        callback_every=4,
    )
    assert [step for step, _ in calls] == [4, 8, 12, 13]
    for _, summary in calls:
        assert all(type(v) is float for v in summary.values())
        assert 0.0 <= summary["acceptance"] <= 1.0
    assert set(calls[0][1]) == {"acceptance", *OBSERVABLES}  # first measurement at step 4
    calls.clear()
    run_chain(sampler, x0, 200, callback=lambda step, summary: calls.append(step), progress=True)
    assert len(calls) == 100  # default: every 1% of the run


# ------------------------------------------------------------------------------ bad input


def test_local_metropolis_rejects_odd_lattices_and_bad_parameters():
    sampler = LocalMetropolis(PHI4)
    for shape in [(2, 5, 5), (2, 4, 5)]:
        with pytest.raises(ValueError, match="even"):
            sampler.init(torch.zeros(shape))
        with pytest.raises(ValueError, match="even"):
            run_chain(sampler, torch.zeros(shape), 5)
    for kwargs in [{"delta": 0.0}, {"delta": -1.0}, {"n_hits": 0}, {"n_hits": 1.5}]:
        with pytest.raises(ValueError):
            LocalMetropolis(PHI4, **kwargs)
    with pytest.raises(ValueError, match="local_action"):
        LocalMetropolis(lambda x: x.sum(1))


class _CountingModel:
    """A flow model wrapper that records the batch size of every ``sample`` call."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def sample(self, n, generator=None):
        self.calls.append(n)
        return self.model.sample(n, generator=generator)

    def log_prob(self, x):
        return self.model.log_prob(x)


def test_flow_metropolis_prefetch_hands_out_one_pass_in_order():
    # prefetch=5: one pass of 5·B samples serves five steps, in the order drawn; the chain
    # then sees exactly the proposals that one sample(5·B) call with the same seed returns.
    model = _CountingModel(_untrained_flow(4))
    sampler = FlowMetropolis(model, PHI4, batch_size=3, prefetch=5)
    state = sampler.init(torch.zeros(3, 4, 4, dtype=F64))
    g = torch.Generator().manual_seed(21)
    proposals = []
    for _ in range(7):
        state, info = sampler.step(state, g)
        proposals.append(info.logw)
    assert model.calls == [15, 15]
    with torch.no_grad():
        x, logq = model.model.sample(15, generator=torch.Generator().manual_seed(21))
    torch.testing.assert_close(torch.cat(proposals[:5]), -PHI4(x) - logq)
    sampler.init(None, g)  # a new start discards what was drawn ahead
    assert sampler._ahead == []
    with pytest.raises(ValueError, match="prefetch"):
        FlowMetropolis(model, PHI4, batch_size=3, prefetch=0)


def test_flow_metropolis_rejects_mismatched_fields():
    sampler = FlowMetropolis(_untrained_flow(4), PHI4, batch_size=4)
    with pytest.raises(ValueError, match="lattice"):
        sampler.init(torch.zeros(4, 6, 6, dtype=F64))
    with pytest.raises(ValueError):
        FlowMetropolis(_untrained_flow(4), PHI4, batch_size=0)


def test_samplers_reject_unbatched_fields():
    with pytest.raises(ValueError):
        HMC(PHI4, 0.1, 3).init(torch.zeros(4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"n_steps": 10, "thermalize": -1}, "thermalize"),
        ({"n_steps": 10, "every": 0}, "every"),
        ({"n_steps": 3, "every": 5}, "every"),
        ({"n_steps": 10, "callback_every": 0}, "callback_every"),
        ({"n_steps": 10, "observables": {"bad": 3.0}}, "callable"),
        ({"n_steps": 10, "observables": {"bad": lambda x: x}}, "shape"),
    ],
)
def test_run_chain_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_chain(HMC(PHI4, 0.1, 3), torch.zeros(4, 4, 4), **kwargs)


def test_run_chain_rejects_unknown_start():
    with pytest.raises(ValueError, match="x0"):
        run_chain(HMC(PHI4, 0.1, 3), "zeros", 5)


def test_flow_metropolis_with_local_rejects_bad_input():
    model = _untrained_flow(2)
    with pytest.raises(TypeError, match="local"):
        FlowMetropolisWithLocal(model, PHI4, object())
    for n_local in (0, 1.5, True):
        with pytest.raises(ValueError, match="n_local"):
            FlowMetropolisWithLocal(model, PHI4, LocalMetropolis(PHI4), n_local=n_local)
