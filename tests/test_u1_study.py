"""Notebook 02's helpers: flow-MH is exact for U(1), log Z from importance weights, checkpoints.

The statistical tests follow tests/test_heatbath.py: fixed seeds, exact references from the
character expansion, tolerances of 4σ in Γ-method errors, and a check that the error is
small enough for the comparison to have power.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lqft_lab.actions import Phi4Action, U1WilsonAction
from lqft_lab.exact import (
    u1_charge_distribution,
    u1_log_z,
    u1_plaquette,
    u1_topological_susceptibility,
)
from lqft_lab.flows import LineRotationCoupling, RealNVPConfig, add_line_rotations, build_u1_flow
from lqft_lab.io import load_checkpoint, pretrained_path, read_metadata, save_checkpoint
from lqft_lab.studies.u1 import (
    charge_distribution,
    log_z_estimate,
    run_u1_algorithm,
    train_u1_flow,
)
from lqft_lab.train import ChainTrainer, evaluate


@pytest.fixture(scope="module")
def small_flow():
    """A briefly trained (so deliberately imperfect) flow at L = 4, β = 1."""
    torch.manual_seed(0)
    model, trainer, metrics = train_u1_flow(4, 1.0, 100, seed=0, n_layers=8, n_eval=2048)
    assert 0.05 < metrics["acceptance"] < 1  # better than the prior, far from perfect
    return model


@pytest.mark.parametrize("algorithm", ["flow", "flow_heatbath"])
def test_flow_mh_reproduces_exact_plaquette_and_chi_t(small_flow, algorithm):
    # The "done when": flow-MH, like HMC and the heatbath (tests/test_hmc.py,
    # tests/test_heatbath.py), reproduces the exact <cos θ_P> and χ_t within 4σ. The
    # Metropolis correction makes the chain exact for any flow, so a poor one must pass too;
    # so must flow-MH moves alternated with heatbath sweeps.
    L, beta = 4, 1.0
    run = run_u1_algorithm(algorithm, beta, L, 300, 256, model=small_flow, seed=3)
    assert run.acceptance > 0.05
    for name, res, value in (
        ("plaquette", run.plaq, u1_plaquette(beta, L)),
        ("chi_t", run.chi_t, u1_topological_susceptibility(beta, L)),
    ):
        assert res.window_converged, name
        # power: 4σ is under 10% of the value (the plaquette's under 2%)
        assert res.error < 0.025 * value, (name, res.error, value)
        assert abs(res.value - value) < 4 * res.error, (name, res.value, res.error, value)


def test_log_z_from_importance_weights_matches_exact(small_flow):
    L, beta = 4, 1.0
    est = log_z_estimate(
        small_flow, U1WilsonAction(beta), 8192, generator=torch.Generator().manual_seed(5)
    )
    # the flow's density is w.r.t. dθ on 2V links; the exact Z uses dθ/2π per link
    assert est.lebesgue_offset == pytest.approx(2 * L * L * math.log(2 * math.pi))
    assert 0 < est.ess <= 1 and est.n == 8192
    assert est.error < 0.05  # a pull with power: Z to 5%
    assert abs(est.value - u1_log_z(beta, L)) < 4 * est.error, (est, u1_log_z(beta, L))


def test_log_z_at_beta_zero_is_the_volume_of_the_torus():
    # S = 0: E_q[1/q] = (2π)^{2V} for any normalised q, i.e. log Z = 0 in Haar units.
    model = build_u1_flow(4, n_layers=4, seed=0)
    est = log_z_estimate(
        model, U1WilsonAction(0.0), 4096, generator=torch.Generator().manual_seed(0)
    )
    assert 0 < est.error < 0.05
    assert abs(est.value) < 4 * est.error, est


def test_charge_distribution_reweights_to_the_exact_one(small_flow):
    L, beta = 4, 1.0
    dist = charge_distribution(
        small_flow, U1WilsonAction(beta), 8192, generator=torch.Generator().manual_seed(6)
    )
    assert dist.n == 8192 and dist.raw.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        dist.exact, u1_charge_distribution(beta, L, q_max=dist.charges[-1])[1]
    )
    for q in (-1, 0, 1):
        i = q + dist.charges[-1]
        assert dist.reweighted_err[i] < 0.1 * dist.exact[i]  # power: each P(Q) to 10%
        assert abs(dist.reweighted[i] - dist.exact[i]) < 4 * dist.reweighted_err[i], (q, dist)
    # the charge's KL divergence is part of the whole (data processing), and the flow's > 0
    assert dist.kl_Q < dist.kl + 4 * dist.kl_err
    assert dist.kl > 4 * dist.kl_err


def test_charge_distribution_of_the_uniform_prior_at_beta_zero():
    # All-zero conditioners make every NCP kernel the identity: q is the uniform prior,
    # which is the β = 0 target, so KL = 0 exactly and the raw charges follow the exact
    # P(Q) (Irwin–Hall): a χ² test of the whole chain links → Q → histogram.
    model = build_u1_flow(4, n_layers=4, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    dist = charge_distribution(
        model, U1WilsonAction(0.0), 8192, generator=torch.Generator().manual_seed(1)
    )
    # up to float32 rounding of log q = -2V log 2π ≈ -58.8 (ulp 4e-6)
    assert dist.kl == pytest.approx(0.0, abs=1e-5) and dist.kl_err < 1e-5
    np.testing.assert_allclose(dist.reweighted, dist.raw, atol=1e-12)
    counts = dist.raw * dist.n
    expected = dist.exact * dist.n
    big = expected >= 5  # the far tails, where fewer are expected, become one bin
    obs, exp = counts[big], expected[big]
    if not big.all():
        obs, exp = np.append(obs, counts[~big].sum()), np.append(exp, expected[~big].sum())
    exp *= obs.sum() / exp.sum()  # the exact P beyond ±q_max is below 1e-6
    assert stats.chisquare(obs, exp).pvalue > 1e-3


def test_charge_distribution_rejects_bad_input(small_flow):
    with pytest.raises(TypeError, match="U1WilsonAction"):
        charge_distribution(small_flow, Phi4Action(-4.0, 8.0), 16)
    with pytest.raises(ValueError, match="n_samples"):
        charge_distribution(small_flow, U1WilsonAction(1.0), 1)


def test_hmc_and_heatbath_runs_report_exact_physics_at_beta_one():
    L, beta = 4, 1.0
    for alg in ("hmc", "heatbath"):
        run = run_u1_algorithm(alg, beta, L, 300, 64, seed=1)
        assert run.Q_series.shape == (300, 64)
        assert run.Q_changes > 0 and not run.tau_Q_lower_bound
        assert abs(run.plaq.value - u1_plaquette(beta, L)) < 4 * run.plaq.error, alg
        assert run.plaq.error < 0.01 * u1_plaquette(beta, L)


def test_frozen_charge_is_reported_as_a_lower_bound():
    # Cold start at strong coupling: Q stays 0 in every chain, the Γ-method sees constant
    # data (error ~0), and the run must not pass that off as a fast chain.
    run = run_u1_algorithm("hmc", 20.0, 4, 20, 4, seed=0)
    assert run.Q_changes == 0 and run.Q.error < 1e-6  # rounding noise of Q only
    assert run.tau_Q_lower_bound and run.tau_Q == 20


def test_run_u1_algorithm_rejects_bad_input():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        run_u1_algorithm("metropolis", 1.0, 4, 10, 2)
    for algorithm in ("flow", "flow_heatbath"):
        with pytest.raises(ValueError, match="needs a trained model"):
            run_u1_algorithm(algorithm, 1.0, 4, 10, 2)


def test_u1_flow_checkpoint_round_trip(tmp_path):
    action = U1WilsonAction(2.0)
    model = build_u1_flow(8, n_layers=4, kernel="spline", seed=1)
    path = save_checkpoint(tmp_path / "u1.safetensors", model, action, steps=3, metrics={})
    meta = read_metadata(path)
    assert meta["kind"] == "u1_equivariant" and meta["architecture"]["kernel"] == "spline"
    loaded, _ = load_checkpoint(path, action=action, architecture=model.config)
    assert loaded.config == model.config
    z = model.prior.sample(3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.flow(z)[0], loaded.flow(z)[0])
    with pytest.raises(ValueError, match="action does not match"):
        load_checkpoint(path, action=U1WilsonAction(3.0))
    with pytest.raises(ValueError, match="architecture does not match"):
        load_checkpoint(path, architecture=RealNVPConfig(L=8))
    with pytest.raises(ValueError, match="architecture does not match"):
        load_checkpoint(path, architecture=build_u1_flow(8, n_layers=8).config)


@pytest.mark.parametrize(
    ("L", "beta"), [(8, 2.0), (8, 4.0), (8, 6.0), (16, 2.0), (16, 4.0), (16, 6.0)]
)
def test_shipped_u1_flows_are_as_good_as_recorded(L, beta):
    """data/models/u1_L<L>_b<β> (notebook 02's flows; those at L = 16 are the flows of full
    mode's scan, used as they are): the right action and lattice, a fresh-sample loss that
    agrees with the one recorded, and the variational bound KL(q‖p) = loss + log Z ≥ 0
    against the exact log Z.
    (Gauge equivariance holds for any weights: test_flows_u1.py.)"""
    action = U1WilsonAction(beta)
    model, meta = load_checkpoint(pretrained_path(f"u1_L{L}_b{beta:g}"), action=action)
    assert meta["kind"] == "u1_equivariant" and model.config.L == L
    recorded = meta["metrics"]
    fresh = evaluate(model, action, 2048, generator=torch.Generator().manual_seed(11))
    # Independent samples on both sides: the difference has the combined standard error.
    sigma = math.hypot(fresh["loss_err"], recorded["loss_err"])
    assert abs(fresh["loss"] - recorded["loss"]) < 4 * sigma, (fresh["loss"], recorded["loss"])
    # The flow's log q is a density in dθ (the prior's constant log q = -n_links log 2π);
    # the exact Z is in the Haar measure dθ/2π per link.
    log_z_dtheta = u1_log_z(beta, L) + model.prior.n_links * math.log(2 * math.pi)
    assert fresh["loss"] + log_z_dtheta > -4 * fresh["loss_err"]


def test_keep_better_returns_the_start_when_training_makes_the_flow_worse(small_flow):
    # lr = 0.3 wrecks a decent flow; keep_better must hand back the start's exact weights
    start = {k: v.clone() for k, v in small_flow.state_dict().items()}
    model = build_u1_flow(4, config=small_flow.config)
    model.load_state_dict(start)
    model, _, metrics = train_u1_flow(
        4, 1.0, 30, seed=4, lr=0.3, n_eval=2048, model=model, keep_better=True
    )
    assert metrics["kept"] == "start"
    assert not metrics["loss_trained"] <= metrics["loss"]  # worse, or NaN
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
    # from the identity start, a few ordinary steps help, and then the trained weights stay
    model, _, metrics = train_u1_flow(4, 1.0, 30, seed=0, n_layers=2, n_eval=1024, keep_better=True)
    assert metrics["kept"] == "trained" and metrics["loss"] == metrics["loss_trained"]
    start = build_u1_flow(4, n_layers=2, seed=0).state_dict()  # what training started from
    assert not all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def _assert_paired_kl_gain(before, after, action, n=2048):
    """The reverse-KL loss of ``after`` is lower than that of ``before`` by more than 4
    standard errors of the difference, both measured on the same prior draws."""
    with torch.no_grad():
        x0, logq0 = before.sample(n, generator=torch.Generator().manual_seed(5))
        x1, logq1 = after.sample(n, generator=torch.Generator().manual_seed(5))
    gain = (logq0 + action(x0)) - (logq1 + action(x1))  # per prior draw, in nats
    assert gain.mean() > 4 * gain.std() / math.sqrt(n), (gain.mean(), gain.std())


def test_training_line_rotations_only_lowers_the_kl_and_keeps_the_couplings():
    # The recipe of the shipped β = 4, 6 flows: line rotations inserted into a trained flow
    # (as the identity) and trained alone. Measured on the same prior draws through both
    # flows, the reverse-KL loss must fall by more than 4 standard errors of the paired
    # difference, and the plaquette couplings must not move.
    L, beta = 8, 4.0
    plain, _, _ = train_u1_flow(L, beta, 150, seed=0, n_layers=8, lr=3e-3, n_eval=256)
    model = add_line_rotations(plain)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model, _, _ = train_u1_flow(
        L, beta, 150, seed=1, lr=1e-2, n_eval=256, model=model, rotations_only=True
    )
    rotations = {
        id(p)
        for m in model.modules()
        if isinstance(m, LineRotationCoupling)
        for p in m.parameters()
    }
    for name, p in model.named_parameters():
        assert p.requires_grad, f"{name} left frozen"  # training restores the flags
        if id(p) not in rotations:
            assert torch.equal(p, before[name]), f"{name} moved"
    _assert_paired_kl_gain(plain, model, U1WilsonAction(beta))
    with pytest.raises(ValueError, match="line rotations"):
        train_u1_flow(L, beta, 1, n_layers=2, rotations_only=True)


def test_forward_kl_training_on_chains_lowers_the_kl():
    # train_u1_flow(forward_kl=True): maximum likelihood on chains of flow-MH moves and
    # heatbath sweeps. Continued from a flow trained briefly by reverse KL and measured on
    # the same prior draws through both flows, the reverse-KL loss must fall by more than
    # 4 standard errors of the paired difference.
    L, beta = 8, 4.0
    plain, _, _ = train_u1_flow(L, beta, 150, seed=0, n_layers=8, lr=3e-3, n_eval=256)
    before = build_u1_flow(L, config=plain.config)
    before.load_state_dict(plain.state_dict())
    model, trainer, _ = train_u1_flow(
        L, beta, 150, seed=1, lr=3e-3, n_eval=256, model=plain, forward_kl=True
    )
    assert isinstance(trainer, ChainTrainer) and trainer.n_local == 1
    _assert_paired_kl_gain(before, model, U1WilsonAction(beta))


def test_every_algorithm_discards_a_tenth_of_its_steps_by_default(small_flow, monkeypatch):
    # A flow chain starts from the flow's own draws, not from p: with acceptance ~0.01 its
    # first steps carry the proposals' bias (see run_u1_algorithm), so it thermalizes like
    # HMC and the heatbath; an explicit `thermalize` still wins.
    import lqft_lab.studies.u1 as study

    seen = []

    def stop(sampler, x0, n_steps, generator, observables, thermalize, progress):
        seen.append(thermalize)
        raise StopIteration

    monkeypatch.setattr(study, "run_chain", stop)
    for algorithm, n_steps in (("flow", 50), ("flow", 400), ("hmc", 400), ("heatbath", 400)):
        with pytest.raises(StopIteration):
            study.run_u1_algorithm(algorithm, 1.0, 4, n_steps, 2, model=small_flow)
    with pytest.raises(StopIteration):
        study.run_u1_algorithm("flow", 1.0, 4, 400, 2, model=small_flow, thermalize=3)
    assert seen == [10, 40, 40, 40, 3]
