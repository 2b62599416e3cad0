"""The critical-slowing-down and volume-transfer studies: exact anchors and bad input."""

import math

import pytest
import torch

from lqft_lab import exact
from lqft_lab.actions import Phi4Action
from lqft_lab.flows import build_real_nvp
from lqft_lab.studies.phi4_scaling import (
    ENSEMBLES,
    Ensemble,
    fit_dynamical_exponent,
    run_algorithm,
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
