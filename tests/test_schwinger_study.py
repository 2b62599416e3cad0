"""Notebook 04's study compositions: sizes per mode, HMC chains that record ΔH and CG
iterations, the charge-one configuration and its near-zero mode along κ, and the
sampler-against-reference comparison."""

import math

import numpy as np
import pytest
import torch

from lqft_lab.actions import PseudofermionAction, SchwingerAction
from lqft_lab.actions.wilson_dirac import WilsonDirac
from lqft_lab.analysis import gamma_method
from lqft_lab.exact.schwinger import free_spectrum, schwinger_2x2
from lqft_lab.observables import plaquette, topological_charge
from lqft_lab.samplers import HMC, Chain, PseudofermionHMC
from lqft_lab.studies.schwinger import (
    Comparison,
    SamplerCost,
    SchwingerSizes,
    chain_observables,
    compare_samplers,
    comparison_table,
    cost_table,
    kappa_scan,
    run_hmc_chain,
    sampler_costs,
    uniform_flux,
)

# ================================================================ sizes


def test_sizes_per_mode_keep_the_lab_rules():
    """DESIGN.md: ESS on >= 4096 fresh samples, acceptance on >= 10^4 proposals; unit
    trajectories; full mode is the default (what the GPU run uses)."""
    for mode in ("fast", "full"):
        sizes = SchwingerSizes.for_mode(mode)
        assert sizes.ess_samples >= 4096
        assert sizes.flow[0] * sizes.flow[1] >= 10_000
        assert sizes.joint[0] * sizes.joint[1] >= 10_000 and sizes.joint_ess_samples >= 4096
        assert sizes.step_size * sizes.n_md == pytest.approx(1.0)
    assert SchwingerSizes.for_mode("full") == SchwingerSizes()
    fast, full = SchwingerSizes.for_mode("fast"), SchwingerSizes()
    assert fast.pf_hmc[1] < full.pf_hmc[1]  # full mode's pseudofermion HMC is the long run
    assert full.even_odd and full.cg_max_iter > 2 * 2 * 16 * 16  # near κ_c, at L = 16
    with pytest.raises(ValueError, match="mode"):
        SchwingerSizes.for_mode("slow")
    with pytest.raises(ValueError, match="ess_samples"):
        SchwingerSizes(ess_samples=1000)


def test_sizes_take_changes_on_top_of_a_mode():
    """A smoke run of full mode's code path: the full sizes with a few fields changed."""
    smoke = SchwingerSizes.for_mode("full", hmc=(2, 8), train_steps=2)
    assert smoke.hmc == (2, 8) and smoke.train_steps == 2
    assert smoke.pf_hmc == SchwingerSizes().pf_hmc  # the rest is full mode's
    assert SchwingerSizes.for_mode("fast", lr=0.5).lr == 0.5


# ================================================================ observables and chains


def test_chain_observables_are_the_fermion_ones_plus_the_charge():
    obs = chain_observables(0.0)
    assert set(obs) == {"plaquette", "condensate", "pion_1", "Q"}
    theta = uniform_flux(4, 1)
    # κ = 0: D = 1, so Σ = 2 exactly and C_π(1) = 0; the charge is the configuration's
    assert obs["condensate"](theta).item() == pytest.approx(2.0, abs=1e-14)
    assert obs["pion_1"](theta).item() == pytest.approx(0.0, abs=1e-14)
    assert obs["Q"](theta).item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kind", ["exact", "pseudofermion"])
def test_run_hmc_chain_records_what_each_trajectory_did(kind):
    """``delta_H`` and ``boltzmann`` are the sampler's own ΔH of every measured trajectory
    (re-derived by running the same sampler with the same generator), and the CG
    iterations are there for pseudofermions only."""
    beta, kappa = 1.0, 0.2
    if kind == "exact":
        sampler = HMC(SchwingerAction(beta, kappa), 0.25, 4)
    else:
        sampler = PseudofermionHMC(PseudofermionAction(beta, kappa), 0.25, 4)
    x0 = torch.zeros(3, 2, 2, 2, dtype=torch.float64)
    chain = run_hmc_chain(
        sampler, x0, 5, torch.Generator().manual_seed(0), {"plaquette": plaquette}, thermalize=2
    )
    state, gen, dH, cg = sampler.init(x0), torch.Generator().manual_seed(0), [], []
    for _ in range(7):
        state, info = sampler.step(state, gen)
        dH.append(info.delta_H)
        cg.append(getattr(info, "cg_iterations", None))
    assert torch.allclose(chain.observables["delta_H"], torch.stack(dH[2:]))
    assert torch.allclose(chain.observables["boltzmann"], torch.exp(-torch.stack(dH[2:])))
    assert torch.allclose(chain.observables["plaquette"][-1], plaquette(state.x))
    if kind == "pseudofermion":
        assert torch.equal(chain.observables["cg_iterations"], torch.stack(cg[2:]).double())
        assert (chain.observables["cg_iterations"] > 0).all()
    else:
        assert "cg_iterations" not in chain.observables


def test_run_hmc_chain_refuses_other_samplers_and_clashing_names():
    x0 = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="sampler"):
        run_hmc_chain(object(), x0, 2)
    sampler = HMC(SchwingerAction(1.0, 0.1), 0.2, 2)
    with pytest.raises(ValueError, match="delta_H"):
        run_hmc_chain(sampler, x0, 2, None, {"delta_H": plaquette})


@pytest.mark.slow
def test_both_hmcs_reproduce_the_exact_2x2_values_through_run_hmc_chain():
    """β = 2, κ = 0.24 on 2×2 (the notebook's fast point): 128 chains × 150 unit
    trajectories of each HMC, compared by compare_samplers with the exact quadrature, all
    within 4σ, and ⟨e^{-ΔH}⟩ = 1 within 4σ. Measured: pulls -1.36 to +0.13 (HMC) and
    -1.55 to +2.92 (pseudofermion HMC, its plaquette 0.8112 ± 0.0021 against the exact
    0.8052); plaquette errors 0.0021-0.0032 against a quenched-to-Nf=2 shift of 0.026."""
    beta, kappa = 2.0, 0.24
    exact = schwinger_2x2(beta, kappa)
    reference = {
        "plaquette": (exact.plaquette, 0.0),
        "condensate": (exact.condensate, 0.0),
        "pion_1": (float(exact.pion_correlator[1]), 0.0),
        "boltzmann": (1.0, 0.0),
    }
    x0 = torch.zeros(128, 2, 2, 2, dtype=torch.float64)
    obs = chain_observables(kappa)
    chains = {
        "hmc": run_hmc_chain(
            HMC(SchwingerAction(beta, kappa), 0.2, 5), x0, 150,
            torch.Generator().manual_seed(1), obs, thermalize=20,
        ),
        "pf_hmc": run_hmc_chain(
            PseudofermionHMC(PseudofermionAction(beta, kappa), 0.2, 5), x0, 150,
            torch.Generator().manual_seed(2), obs, thermalize=20,
        ),
    }  # fmt: skip
    rows = compare_samplers(chains, reference)
    assert len(rows) == 8
    assert all(abs(r.pull) < 4 for r in rows), rows
    # the test has power: a chain that lost the determinant (the quenched plaquette, κ = 0)
    # would sit more than 4σ from the exact Nf = 2 value in expectation
    quenched = schwinger_2x2(beta, 0.0).plaquette
    plaq = [r for r in rows if r.observable == "plaquette"]
    assert all(abs(exact.plaquette - quenched) > 4 * r.error for r in plaq), (quenched, plaq)


# ================================================================ charged configurations


@pytest.mark.parametrize("L, charge", [(4, 1), (6, -2), (8, 3), (4, 0)])
def test_uniform_flux_has_the_charge_and_equal_plaquettes(L, charge):
    from lqft_lab.actions import plaquette_angles

    theta = uniform_flux(L, charge)
    assert theta.shape == (1, 2, L, L) and theta.dtype == torch.float64
    assert topological_charge(theta).item() == pytest.approx(charge, abs=1e-12)
    angles = torch.remainder(
        plaquette_angles(theta) - 2 * math.pi * charge / L**2 + math.pi, 2 * math.pi
    )
    assert torch.allclose(angles, torch.full_like(angles, math.pi), atol=1e-12)


def test_uniform_flux_refuses_a_charge_it_cannot_hold():
    with pytest.raises(ValueError, match="charge"):
        uniform_flux(4, 8)
    with pytest.raises(TypeError, match="charge"):
        uniform_flux(4, 1.5)


def test_kappa_scan_against_dense_and_free_spectra():
    """Free links (antiperiodic): no real eigenvalue (NaN), the left edge is the formula's
    minimum real part, det D > 0 with log det from the formula. A Q = 1 uniform flux on 8×8:
    the lowest real eigenvalue crosses zero below κ_c(β = 2) ≈ 0.2773 and sign det D
    flips there and only there; slogdet agrees with the product of the eigenvalues."""
    kappas = [0.1, 0.2, 0.24]
    free = kappa_scan(torch.zeros(1, 2, 4, 4, dtype=torch.float64), kappas)
    assert np.isnan(free.lowest_real).all()
    for i, k in enumerate(kappas):
        assert free.min_real_part[i, 0] == pytest.approx(free_spectrum(4, 4, k).real.min().item())
        assert free.sign_det[i, 0] == 1
        lam = free_spectrum(4, 4, k)
        assert free.log_abs_det[i, 0] == pytest.approx(torch.log(lam.abs()).sum().item(), rel=1e-12)

    kappas = np.linspace(0.2, 0.3, 11)
    scan = kappa_scan(uniform_flux(8, 1), kappas)
    crossing = np.nonzero(np.diff(np.sign(scan.lowest_real[:, 0])))[0]
    flips = np.nonzero(np.diff(scan.sign_det[:, 0]))[0]
    assert len(crossing) >= 1 and kappas[crossing[0]] < 0.2773
    assert flips[0] == crossing[0]  # the real eigenvalue through zero is what flips det D
    lam = torch.linalg.eigvals(WilsonDirac(0.25).dense(uniform_flux(8, 1)))
    i = int(np.argmin(abs(kappas - 0.25)))
    assert scan.log_abs_det[i, 0] == pytest.approx(torch.log(lam.abs()).sum().item(), rel=1e-10)


# ================================================================ comparisons


def _chain(values: np.ndarray) -> Chain:
    data = torch.as_tensor(values, dtype=torch.float64)
    return Chain(observables={"x": data}, accepted=torch.ones_like(data), final=None)


def test_compare_samplers_pulls_against_the_gamma_method():
    rng = np.random.default_rng(0)
    chain = _chain(0.5 + rng.normal(size=(400, 8)))
    rows = compare_samplers({"a": chain}, {"x": (0.5, 0.03), "missing": (1.0, 0.0)})
    assert len(rows) == 1 and isinstance(rows[0], Comparison)
    expected = gamma_method(chain.observables["x"].numpy(), warn=False)
    row = rows[0]
    assert row.value == pytest.approx(expected.value) and row.error == pytest.approx(expected.error)
    assert row.pull == pytest.approx((expected.value - 0.5) / math.hypot(expected.error, 0.03))
    # a shift of 10 errors is a pull of 10
    shifted = compare_samplers({"a": chain}, {"x": (expected.value - 10 * expected.error, 0.0)})
    assert shifted[0].pull == pytest.approx(10.0)
    table = comparison_table(rows, "exact")
    assert table.splitlines()[0].startswith("| sampler |") and "exact" in table.splitlines()[0]
    assert f"{row.pull:+.2f}σ" in table and "± 0.03000" in table


def test_compare_samplers_refuses_bad_input():
    chain = _chain(np.zeros((8, 2)))
    with pytest.raises(TypeError, match="chains"):
        compare_samplers({"a": "chain"}, {"x": (0.0, 0.0)})
    with pytest.raises(TypeError, match="reference"):
        compare_samplers({"a": chain}, {"x": 0.0})
    with pytest.raises(ValueError, match="error"):
        compare_samplers({"a": chain}, {"x": (0.0, -1.0)})
    with pytest.raises(ValueError, match="zero error"):  # constant data and an exact value
        compare_samplers({"a": chain}, {"x": (0.0, 0.0)})
    with pytest.raises(TypeError, match="rows"):
        comparison_table(["row"])


# ================================================================ costs


def _ar1(rho: float, T: int, B: int, rng) -> np.ndarray:
    """``B`` AR(1) chains with lag-one correlation ``rho``: ``τ_int = (1 + ρ)/(2(1 − ρ))``."""
    x = np.zeros((T, B))
    x[0] = rng.normal(size=B)
    for t in range(1, T):
        x[t] = rho * x[t - 1] + math.sqrt(1 - rho**2) * rng.normal(size=B)
    return x


def test_sampler_costs_are_time_per_step_times_twice_tau_int():
    """On AR(1) chains the Γ-method τ_int is near its exact value, so the cost ratio of a
    slow-mixing and a fast-mixing sampler that took the same time is the ratio of their
    exact τ_int within its statistical error."""
    rng = np.random.default_rng(1)
    T, B = 4000, 8
    fast, slow = _ar1(0.0, T, B, rng), _ar1(0.8, T, B, rng)  # τ_int 0.5 and 4.5
    chains = {
        name: Chain(
            observables={"Q": torch.as_tensor(x), "condensate": torch.as_tensor(x)},
            accepted=torch.full((T, B), 0.5, dtype=torch.float64),
            final=None,
        )
        for name, x in (("fast", fast), ("slow", slow))
    }
    costs = sampler_costs(chains, {"fast": 10.0, "slow": 10.0}, thermalize=1000)
    assert [c.sampler for c in costs] == ["fast", "slow"] and isinstance(costs[0], SamplerCost)
    c_fast, c_slow = costs
    assert c_fast.seconds_per_step == pytest.approx(10.0 / (B * (T + 1000)))
    for c in costs:
        expected = gamma_method(chains[c.sampler].observables["Q"].numpy(), warn=False)
        assert c.cost_per_independent_sample("Q") == pytest.approx(
            c.seconds_per_step * 2 * expected.tau_int
        )
        assert c.acceptance == pytest.approx(0.5) and (c.chains, c.steps) == (B, T)
    tau_slow = gamma_method(slow, warn=False)
    ratio = c_slow.cost_per_independent_sample("Q") / c_fast.cost_per_independent_sample("Q")
    assert abs(tau_slow.tau_int - 4.5) < 4 * tau_slow.tau_int_error  # the Γ-method is right
    assert ratio == pytest.approx(9.0, rel=4 * tau_slow.tau_int_error / 4.5 + 0.1)
    # measured every 2 steps: τ_int in steps doubles, and so does the cost
    every2 = Chain(chains["slow"].observables, chains["slow"].accepted, None, every=2)
    (c2,) = sampler_costs({"slow": every2}, {"slow": 10.0}, thermalize=0)
    assert c2.steps == 2 * T and c2.tau_int["Q"] == pytest.approx(2 * c_slow.tau_int["Q"])
    # thermalisation per sampler
    mixed = sampler_costs(
        chains, {"fast": 10.0, "slow": 10.0}, thermalize={"fast": 0, "slow": 1000}
    )
    assert mixed[0].seconds_per_step == pytest.approx(10.0 / (B * T))
    assert mixed[1].seconds_per_step == pytest.approx(c_slow.seconds_per_step)
    table = cost_table(costs, baseline="fast")
    assert table.splitlines()[0].startswith("| sampler | acceptance |")
    assert "(1×)" in table.splitlines()[2] and f"({ratio:.2g}×)" in table.splitlines()[3]
    with pytest.raises(KeyError, match="plaquette"):
        c_fast.cost_per_independent_sample("plaquette")


def test_sampler_costs_refuse_bad_input():
    chain = _chain(np.zeros((8, 2)))
    with pytest.raises(ValueError, match="wall time"):
        sampler_costs({"a": chain}, {"b": 1.0}, 0, ["x"])
    with pytest.raises(ValueError, match="did not measure"):
        sampler_costs({"a": chain}, {"a": 1.0}, 0, ["Q"])
    with pytest.raises(ValueError, match="seconds"):
        sampler_costs({"a": chain}, {"a": -1.0}, 0, ["x"])
    with pytest.raises(ValueError, match="thermalize"):
        sampler_costs({"a": chain}, {"a": 1.0}, -1, ["x"])
    with pytest.raises(ValueError, match="thermalize"):  # a sampler without its number
        sampler_costs({"a": chain}, {"a": 1.0}, {"b": 0}, ["x"])
    with pytest.raises(TypeError, match="observables"):
        sampler_costs({"a": chain}, {"a": 1.0}, 0, "x")
    (cost,) = sampler_costs({"a": chain}, {"a": 1.0}, 0, ["x"])
    with pytest.raises(ValueError, match="baseline"):
        cost_table([cost], baseline="b")
    with pytest.raises(TypeError, match="costs"):
        cost_table(["row"])
