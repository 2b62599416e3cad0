"""The critical-slowing-down and volume-transfer studies: exact anchors and bad input."""

import math

import pytest
import torch

from lqft_lab import exact
from lqft_lab.actions import Phi4Action
from lqft_lab.analysis import PowerLawFit
from lqft_lab.flows import build_real_nvp, transfer_real_nvp
from lqft_lab.studies.phi4_scaling import (
    ENSEMBLES,
    SIZES,
    Ensemble,
    cost_fit,
    crossing_size,
    fit_dynamical_exponent,
    prior_spectrum,
    results_table,
    run_algorithm,
    scaling_figures,
    study_sizes,
    volume_transfer,
)
from lqft_lab.train import TrainConfig, Trainer

# A free field (λ = 0) is the exact anchor: χ₂ = 1/(2m²), m_p = arccosh(1 + m²/2).
FREE = Ensemble("free", 6, 1.0, 0.0, float("nan"), float("nan"))


@pytest.fixture(scope="module")
def free_flow():
    torch.manual_seed(0)
    model = build_real_nvp(L=6, n_layers=2, hidden=(8,), seed=0)
    Trainer(model, FREE.action, TrainConfig(n_steps=150, lr=5e-3, log_every=50)).train()
    return model


@pytest.mark.parametrize(
    "algorithm, prefetch", [("hmc", 1), ("local", 1), ("flow", 1), ("flow", 8)]
)
def test_every_algorithm_reproduces_the_free_field(algorithm, prefetch, free_flow, one_thread):
    run = run_algorithm(
        algorithm, FREE, 400, n_chains=32, model=free_flow, seed=1, prefetch=prefetch
    )
    chi2_exact = exact.free_field_chi2(FREE.lattice, FREE.m2)
    mp_exact = exact.free_field_pole_mass(FREE.m2)
    assert abs(run.chi2.value - chi2_exact) < 4 * run.chi2.error, (run.chi2, chi2_exact)
    assert abs(run.mp.value - mp_exact) < 4 * run.mp.error, (run.mp, mp_exact)
    assert run.chi2.error < 0.1 * chi2_exact  # the comparison has teeth
    assert run.correlator.shape == (FREE.L,)
    assert 0 < run.acceptance <= 1 and run.time_per_step > 0
    assert run.cost_per_independent_sample() == pytest.approx(
        run.time_per_step * 2 * run.chi2.tau_int
    )


def test_published_ensembles_are_on_the_line_of_constant_physics():
    assert [e.L for e in ENSEMBLES.values()] == [6, 8, 10, 12, 14]
    lams = [e.lam for e in ENSEMBLES.values()]
    assert lams == sorted(lams, reverse=True)  # towards the critical line as L grows
    assert all(abs(e.mpL - 4) < 3 * e.mpL_error + 0.05 for e in ENSEMBLES.values())


def test_fit_takes_one_algorithm(free_flow, one_thread):
    small = Ensemble("small", 4, 1.0, 0.0, float("nan"), float("nan"))
    runs = [run_algorithm("local", e, 300, n_chains=16) for e in (small, FREE)]
    fit = fit_dynamical_exponent(runs)
    assert math.isfinite(fit.z) and fit.dof == 0
    hmc = run_algorithm("hmc", FREE, 100, n_chains=16)
    with pytest.raises(ValueError, match="one algorithm"):
        fit_dynamical_exponent([runs[0], hmc])


def test_bad_input_is_a_clear_error(free_flow):
    with pytest.raises(ValueError, match="unknown algorithm"):
        run_algorithm("wolff", FREE, 10)
    with pytest.raises(ValueError, match="needs a model"):
        run_algorithm("flow", FREE, 10)
    with pytest.raises(ValueError, match="n_steps"):
        run_algorithm("hmc", FREE, 1)
    with pytest.raises(TypeError, match="Ensemble"):
        run_algorithm("hmc", "E1", 10)


def test_volume_transfer_and_fine_tuning(free_flow, one_thread):
    action = Phi4Action(1.0, 0.0)
    points = volume_transfer(
        free_flow, action, [6, 12], n_samples=4096, finetune_steps={12: 100}, seed=2
    )
    same, big = points
    assert (same.L, big.L) == (6, 12) and same.finetune_steps == 0 and big.finetune_steps == 100
    # at L0 the transferred flow is the original: one measurement serves both
    assert same.ess == same.ess_locality
    assert big.ess < same.ess
    assert big.ess_locality == pytest.approx(same.ess_locality**4)
    assert big.ess_finetuned > big.ess and big.finetune_seconds > 0
    # fine-tuning lowers the reverse-KL loss per site, well beyond its error
    assert big.finetune_gain_sigma > 3, (big.loss, big.loss_finetuned, big.loss_finetuned_err)
    # KL(q‖p) = loss + log Z (exact for the free field) is extensive for a flow of local
    # couplings: the transferred flow's KL per site is the trained one's, within errors
    kl = {p.L: p.loss + exact.free_field_log_z((p.L, p.L), 1.0) / p.L**2 for p in points}
    assert kl[6] > 5 * same.loss_err  # a flow this short-trained is measurably off p
    assert abs(kl[12] - kl[6]) < 4 * math.hypot(same.loss_err, big.loss_err), kl
    assert math.isnan(same.ess_finetuned) and math.isnan(same.finetune_gain_sigma)
    assert free_flow.config.L == 6  # the original flow is untouched


def test_study_sizes_check_the_notebooks_parameters():
    size, names = study_sizes("fast")
    assert names == ["E1", "E2"] and size["flow"] == (64, 500)
    size["flow"] = (1, 1)  # a copy: the module's sizes stay as they are
    assert SIZES["fast"]["flow"] == (64, 500)
    assert study_sizes("full")[1] == list(ENSEMBLES)
    assert study_sizes("fast", ("E2", "E4"))[1] == ["E2", "E4"]
    with pytest.raises(ValueError, match="mode"):
        study_sizes("slow")
    with pytest.raises(ValueError, match="ensembles"):
        study_sizes("fast", ["E1", "E9"])
    with pytest.raises(ValueError, match="ensembles"):
        study_sizes("fast", ["E1"])
    with pytest.raises(ValueError, match="target_acceptance"):
        study_sizes("fast", target_acceptance=1.0)


def test_crossing_size_solves_the_two_power_laws():
    def fit(alpha, z):
        return PowerLawFit(alpha, 0.0, z, 0.0, None, 0.0, 0, float("nan"))

    flow, hmc = fit(100.0, 0.0), fit(1.0, 2.0)
    L = crossing_size(flow, hmc)
    assert L == pytest.approx(10.0) and flow(L) == pytest.approx(hmc(L))
    assert crossing_size(flow, fit(1.0, 0.0)) == math.inf  # parallel lines never cross
    assert crossing_size(fit(1e300, 0.0), fit(1e-300, 1e-3)) == math.inf  # beyond any float


def test_prior_spectrum_is_white_noise_before_training():
    # the spectral prior's last layer starts at zero: variance 1 at every mode
    p2, variance = prior_spectrum(build_real_nvp(L=6, n_layers=2, spectral_prior=True, seed=0))
    assert p2.shape == variance.shape == (36,)
    assert (p2[1:] >= p2[:-1]).all() and p2[0] == 0
    assert variance == pytest.approx(1.0)
    assert prior_spectrum(build_real_nvp(L=6, n_layers=2, seed=0)) is None


def test_figures_and_table_from_short_runs(free_flow, one_thread):
    # two free-field "ensembles" with a made-up published m_p L = 1.0(1)
    ensembles = [Ensemble(f"S{L}", L, 1.0, 0.0, 1.0, 0.1) for L in (4, 6)]
    flows = {4: transfer_real_nvp(free_flow, 4), 6: free_flow}
    runs = {
        (alg, e.name): run_algorithm(alg, e, 200, n_chains=8, model=flows[e.L], seed=3)
        for e in ensembles
        for alg in ("flow", "hmc", "local")
    }
    fits = {
        (alg, obs): fit_dynamical_exponent([runs[alg, e.name] for e in ensembles], obs)
        for alg in ("flow", "hmc", "local")
        for obs in ("chi2", "E")
    }
    figures = scaling_figures(runs, fits, [], steps_trained={"S6": 7})
    r = runs["flow", "S6"]
    assert figures["extra_train_steps_S6"] == 7
    assert figures["mpL_S6"] == r.mp.value * 6 and figures["acceptance_S6"] == r.acceptance
    assert figures["mpL_pull_S6"] == pytest.approx(
        (r.mp.value * 6 - 1.0) / math.hypot(r.mp.error * 6, 0.1)
    )
    assert figures["tau_chi2_local_S4"] == runs["local", "S4"].chi2.tau_int
    assert figures["z_hmc"] == fits["hmc", "chi2"].z and "z_E_local_err" in figures
    assert figures["cost_ratio_hmc_over_flow_S6"] == pytest.approx(
        runs["hmc", "S6"].cost_per_independent_sample() / r.cost_per_independent_sample()
    )
    z = fits["flow", "chi2"]
    assert (figures["z_flow_score"] < 1) == (abs(z.z) < 0.3 or abs(z.z) < 2 * z.z_error)
    assert not any(k.startswith("ess_") for k in figures)  # no transfer points given
    table = results_table(runs).splitlines()
    assert len(table) == 2 + len(runs) and table[2].startswith("| S4 | flow |")
    hmc = [runs["hmc", e.name] for e in ensembles]
    cost, err, fit = cost_fit(hmc)
    assert cost == pytest.approx([h.cost_per_independent_sample() * 1e6 for h in hmc])
    assert (err > 0).all() and fit.dof == 0 and fit(6) == pytest.approx(cost[1])
