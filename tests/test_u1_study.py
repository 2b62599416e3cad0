"""Notebook 02's helpers: flow-MH is exact for U(1), log Z from importance weights, checkpoints.

The statistical tests follow tests/test_heatbath.py: fixed seeds, exact references from the
character expansion, tolerances of 4σ in Γ-method errors, and a check that the error is
small enough for the comparison to have power.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from types import SimpleNamespace

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
    ShippedFlow,
    U1Scan,
    U1Sizes,
    charge_distribution,
    charge_table,
    exact_table,
    log_z_estimate,
    run_u1_algorithm,
    run_u1_scan,
    scan_records,
    scan_table,
    shipped_u1_flow,
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
    import lqft_lab.studies.u1.chains as study

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


# --------------------------------------------------------------------------- the β scan


def test_sizes_per_mode():
    # The notebook's statistics per mode, as its setup cell had them before they moved here:
    # fast mode runs the scan on L = 8 with the shipped flows as they are and flow + heatbath
    # at the largest β only; full mode on L = 16, training where no flow was trained there.
    fast = dict(train_steps=100, train_lr=1e-4, scratch_steps=2000, scratch_lr=3e-3,
                flow=(64, 400), ess_samples=8192, logz_samples=16384, study_L=8,
                hmc=(16, 2000), heatbath=(16, 800), study_train_steps=0, study_lr=3e-4,
                train_batch=64, prefetch=1, flow_heatbath_every_beta=False)  # fmt: skip
    full = dict(train_steps=1000, train_lr=1e-4, scratch_steps=20000, scratch_lr=3e-3,
                flow=(256, 2000), ess_samples=65536, logz_samples=65536, study_L=16,
                hmc=(64, 20000), heatbath=(64, 10000), study_train_steps=3000, study_lr=3e-4,
                train_batch=256, prefetch=4, flow_heatbath_every_beta=True)  # fmt: skip
    assert asdict(U1Sizes.for_mode("fast")) == fast
    assert asdict(U1Sizes.for_mode("full")) == full
    assert U1Sizes() == U1Sizes.for_mode("full")  # the defaults are full mode's (STYLE.md)
    assert fast["flow"][0] * fast["flow"][1] >= 10_000 and fast["ess_samples"] >= 4096
    with pytest.raises(ValueError, match="mode must be 'fast' or 'full'"):
        U1Sizes.for_mode("medium")


def test_shipped_u1_flow_prefers_the_scan_lattice():
    shipped = shipped_u1_flow(6.0, 16)
    assert shipped.name == "u1_L16_b6" and shipped.model.config.L == 16
    assert not shipped.model.training and "u1_L16_b6" in shipped.summary()
    # no flow trained on L = 12: the L = 8 one, whose conv nets run at any L, unless refused
    assert shipped_u1_flow(4.0, 12).name == "u1_L8_b4"
    assert shipped_u1_flow(4.0, 12, fallback_L8=False) is None
    assert shipped_u1_flow(3.0, 8) is None


def _flow(L, seed):
    return build_u1_flow(L, n_layers=2, hidden=(4,), seed=seed).eval()


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


_META = {"steps": 0, "metrics": {"acceptance": 0.5, "ess": 0.3, "ess_samples": 4096}}

TINY = replace(
    U1Sizes.for_mode("fast"), study_L=4, flow=(8, 30), hmc=(4, 30), heatbath=(4, 20), train_batch=8
)


def test_scan_without_training_runs_flow_mh_where_a_flow_exists(monkeypatch):
    # Fast mode's rules (study_train_steps = 0): the flow study's own model at β = beta on
    # its own lattice, shipped flows as they are, even one trained at another L, and no
    # flow-MH where there is none; flow + heatbath at the largest flow β only.
    import lqft_lab.studies.u1.scan as scan_module

    model = _flow(4, 0)
    shipped = {0.5: _flow(8, 1)}  # trained at L = 8 only
    calls = []

    def fake_shipped(b, L, *, fallback_L8=True, device="cpu"):
        calls.append((b, L, fallback_L8))
        return ShippedFlow(f"fake_b{b:g}", shipped[b], _META) if b in shipped else None

    def no_training(*args, **kwargs):
        raise AssertionError("the scan trained a flow with study_train_steps = 0")

    monkeypatch.setattr(scan_module, "shipped_u1_flow", fake_shipped)
    monkeypatch.setattr(scan_module, "train_u1_flow", no_training)
    hmc = {0.5: run_u1_algorithm("hmc", 0.5, 4, 30, 4, seed=0)}
    scan = run_u1_scan((0.5, 1.0, 1.5), TINY, model, beta=1.0, L=4, hmc_runs=hmc, seed=0)
    assert calls == [(0.5, 4, True), (1.5, 4, True)]  # not at β = beta on its own lattice
    assert scan.flow_betas == [0.5, 1.0] and scan.L == 4
    assert scan.flows[1.0] is model
    assert _same_weights(scan.flows[0.5], shipped[0.5]) and scan.flows[0.5].config.L == 4
    assert scan.runs["hmc", 0.5] is hmc[0.5]  # reused, the others run here
    assert set(scan.runs) == {(a, b) for a in ("hmc", "heatbath") for b in (0.5, 1.0, 1.5)} | {
        ("flow", 0.5),
        ("flow", 1.0),
        ("flow_heatbath", 1.0),
    }
    assert all(r.L == 4 and r.beta == b for (_, b), r in scan.runs.items())
    assert scan.runs["flow", 0.5].n_chains == 8 and scan.runs["heatbath", 1.5].n_steps == 20
    # nothing shipped: the same scan without looking for shipped flows
    bare = run_u1_scan((0.5, 1.0), TINY, model, beta=1.0, L=4, use_pretrained=False)
    assert bare.flow_betas == [1.0] and len(calls) == 2


def test_scan_with_training_uses_flows_trained_on_its_lattice_as_they_are(monkeypatch):
    # Full mode's rules (study_train_steps > 0; the flow study on L = 8, the scan on 4):
    # a flow shipped for the scan's lattice runs as it is; one shipped for another lattice
    # is trained on; without one, the flow of the β before is (annealing, from `model` at
    # the first β); at β = beta only a flow trained on the scan's lattice is looked for.
    # Flow + heatbath at every β.
    import lqft_lab.studies.u1.scan as scan_module

    model = _flow(8, 0)
    shipped = {1.5: _flow(4, 1), 2.0: _flow(8, 2)}
    calls, starts = [], {}

    def fake_shipped(b, L, *, fallback_L8=True, device="cpu"):
        calls.append((b, L, fallback_L8))
        return ShippedFlow(f"fake_b{b:g}", shipped[b], _META) if b in shipped else None

    def recording_train(L, b, n_steps, **kwargs):
        starts[b] = {k: v.clone() for k, v in kwargs["model"].state_dict().items()}
        assert kwargs["forward_kl"] and kwargs["keep_better"] and n_steps == 2
        return train_u1_flow(L, b, n_steps, **kwargs)

    monkeypatch.setattr(scan_module, "shipped_u1_flow", fake_shipped)
    monkeypatch.setattr(scan_module, "train_u1_flow", recording_train)
    sizes = replace(TINY, study_train_steps=2, flow_heatbath_every_beta=True)
    scan = run_u1_scan((1.0, 1.5, 2.0, 2.5), sizes, model, beta=1.0, L=8, seed=0)
    assert calls == [(1.0, 4, False), (1.5, 4, True), (2.0, 4, True), (2.5, 4, True)]
    assert scan.flow_betas == [1.0, 1.5, 2.0, 2.5]
    assert sorted(starts) == [1.0, 2.0, 2.5]  # β = 1.5 was trained on L = 4 already
    assert _same_weights(scan.flows[1.5], shipped[1.5])
    assert all(torch.equal(starts[1.0][k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(starts[2.0][k], v) for k, v in shipped[2.0].state_dict().items())
    assert all(torch.equal(starts[2.5][k], v) for k, v in scan.flows[2.0].state_dict().items())
    assert all(f.config.L == 4 for f in scan.flows.values())
    assert all(("flow_heatbath", b) in scan.runs for b in scan.flow_betas)
    assert len(scan.notes) == 2 + 1 + 3  # two shipped flows found; one used as is, three trained
    assert any("the shipped flow, trained on this lattice, as it is" in n for n in scan.notes)
    assert any("from the β=2 flow" in n for n in scan.notes)  # β = 2.5 annealed


def test_scan_table_and_records_against_exact():
    # A thawed and a frozen run at L = 4: pulls against the character expansion, the frozen
    # charge's χ_t pull undefined and its τ_int(Q) a lower bound of the run length.
    L = 4
    runs = {
        ("hmc", 1.0): run_u1_algorithm("hmc", 1.0, L, 300, 64, seed=1),
        ("heatbath", 1.0): run_u1_algorithm("heatbath", 1.0, L, 300, 64, seed=1),
        ("hmc", 20.0): run_u1_algorithm("hmc", 20.0, L, 20, 4, seed=0),
    }
    runs["flow", 20.0] = runs["flow_heatbath", 20.0] = runs["heatbath", 1.0]  # stand-ins
    scan = U1Scan(L, runs, {20.0: None})
    pulls = scan.pulls()
    for alg in ("hmc", "heatbath"):
        r = runs[alg, 1.0]
        assert pulls[alg, 1.0][0] == pytest.approx(
            (r.plaq.value - u1_plaquette(1.0, L)) / r.plaq.error
        )
        chi = u1_topological_susceptibility(1.0, L)
        assert pulls[alg, 1.0][1] == pytest.approx((r.chi_t.value - chi) / r.chi_t.error)
        assert all(abs(p) < 4 for p in pulls[alg, 1.0])  # exact samplers
    assert math.isnan(pulls["hmc", 20.0][1])
    table = scan_table(scan).splitlines()
    assert len(table) == 2 + len(runs)
    frozen = next(row for row in table if row.startswith("| hmc | 20 |"))
    assert "≥ 20 (Q never changed)" in frozen and "nanσ" in frozen
    assert f"{u1_plaquette(1.0, L):.5f}" in next(row for row in table if "| hmc | 1 |" in row)
    charge = {20.0: SimpleNamespace(kl=1.5, kl_Q=0.5)}
    records = scan_records(scan, charge)
    assert records["kl_b20"] == 1.5 and records["kl_Q_b20"] == 0.5
    assert records["study_L"] == L
    assert records["tau_Q_hmc_b20"] == 20 and records["tau_Q_hmc_b20_lower_bound"] is True
    assert records["Q_changes_hmc_b20"] == 0 and records["Q_changes_hmc_b1"] > 0
    assert records["plaq_pull_heatbath_b1"] == pulls["heatbath", 1.0][0]
    assert records["tau_Q_hmc_over_flow_b20"] == 20 / runs["heatbath", 1.0].tau_Q
    assert len(records) == 1 + 6 * len(runs) + 2 + 2


def test_charge_table_rows():
    dist = charge_distribution(
        _flow(4, 0), U1WilsonAction(1.0), 1024, generator=torch.Generator().manual_seed(2)
    )
    rows = charge_table({1.0: dist}).splitlines()
    assert len(rows) == 3 and rows[2].startswith("| 1 | ")
    q2_exact = float((dist.charges**2 * dist.exact).sum())
    assert rows[2].endswith(f"| {q2_exact:.3f} |")
    assert f"| {dist.kl:.2f} ± {dist.kl_err:.2f} | {dist.kl_Q:.2f} |" in rows[2]


def test_exact_table_rows_are_the_character_expansion():
    rows = exact_table([2.0, 6.0], [8, 16], 8).splitlines()
    assert len(rows) == 4 and rows[0].count("|") == rows[1].count("|") == 2 * 2 + 3
    cells = [c.strip() for c in rows[3].strip("|").split("|")]
    assert cells[0] == "6"
    assert float(cells[1]) == pytest.approx(u1_plaquette(6.0, 8), abs=1e-5)
    assert float(cells[4]) == pytest.approx(u1_topological_susceptibility(6.0, 16), abs=1e-5)
    assert float(cells[5]) == pytest.approx(u1_log_z(6.0, 8), abs=1e-4)
