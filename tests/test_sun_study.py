"""Notebook 03's helpers: targets, measurements, runs of the three lattice samplers, bad input.

The samplers and flows have their own contract and exactness tests; here the compositions
are checked: every run reports the exact value it is compared with, the analysed chain or
the reweighted flow reproduces it, and the tables show what was measured.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lqft_lab.actions import SingleMatrixAction
from lqft_lab.exact import sun as exact_sun
from lqft_lab.flows import build_single_matrix_flow, build_sun_flow
from lqft_lab.studies.sun import (
    SINGLE_MATRIX_TARGETS,
    NotebookSizes,
    lattice_equivariance,
    lattice_exact_table,
    lattice_flows,
    measure_single_matrix_flow,
    notebook_sizes,
    run_sun_algorithm,
    run_sun_study,
    single_matrix_action,
    single_matrix_equivariance,
    single_matrix_table,
    single_matrix_targets_table,
    sun_study_table,
    train_single_matrix_flow,
    train_single_matrix_flows,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_single_matrix_targets_are_boyda_et_als():
    assert {c for _, c in SINGLE_MATRIX_TARGETS.values()} == {
        (0.98, -0.63, -0.21),
        (0.17, -0.65, 1.22),
        (1.0, 0.0, 0.0),
    }
    assert all(b == 9.0 for b, _ in SINGLE_MATRIX_TARGETS.values())
    action = single_matrix_action("c", 3)
    assert action.params() == {"beta": 9.0, "coeffs": [1.0, 0.0, 0.0], "N": 3}
    with pytest.raises(ValueError, match="target must be one of"):
        single_matrix_action("d", 3)


def test_short_single_matrix_training_is_already_good():
    """40 steps take the flow from the Haar measure (ESS ~ 0.1) to ESS > 0.7 on target a."""
    _, trainer, metrics = train_single_matrix_flow(3, "a", 40, seed=0, n_eval=4096)
    assert trainer.step == 40 and metrics["n"] == 4096
    assert metrics["ess"] > 0.7


@pytest.mark.parametrize("algorithm", ["hmc", "heatbath"])
def test_runs_reproduce_the_exact_plaquette(algorithm):
    run = run_sun_algorithm(algorithm, 2, 2.0, 4, 60, 16, seed=1)
    assert run.plaq_exact == exact_sun.sun_plaquette(2, 2.0, 4)
    assert run.n_steps == 60 and run.thermalize == 20 and run.seconds_per_step > 0
    assert abs(run.plaq_pull) < 4, run.plaq_pull
    assert run.plaq.error < 0.01 * run.plaq_exact  # the pull has teeth: 1% resolution
    assert 0.5 < run.acceptance <= 1


def test_flow_runs_need_a_model_and_algorithms_are_checked():
    with pytest.raises(ValueError, match="needs a trained model"):
        run_sun_algorithm("flow", 3, 4.0, 4, 10, 4)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        run_sun_algorithm("metropolis", 3, 4.0, 4, 10, 4)
    model = build_sun_flow(4, 2, n_layers=2, seed=0)
    run = run_sun_algorithm("flow", 2, 2.0, 4, 10, 4, model=model, thermalize=2)
    assert run.algorithm == "flow" and 0 <= run.acceptance <= 1
    assert torch.isfinite(torch.tensor(run.plaq.value))


@pytest.mark.parametrize("N", [2, 3])
def test_shipped_sun_flow_loads_and_is_gauge_equivariant(N):
    """data/models/suN_L8_b4 (notebook 03's fast mode) matches its action and stays exact."""
    from lqft_lab.actions import SUNWilsonAction, sun_gauge_transform
    from lqft_lab.groups.sun import haar
    from lqft_lab.io import load_checkpoint, pretrained_path

    model, meta = load_checkpoint(pretrained_path(f"su{N}_L8_b4"), action=SUNWilsonAction(4.0, N))
    assert meta["kind"] == "sun_equivariant" and meta["metrics"]["acceptance"] >= 0.3
    model = model.double()
    with torch.no_grad():
        z = model.prior.sample(2, generator=torch.Generator().manual_seed(0))
        omega = haar((2, 8, 8), N, generator=torch.Generator().manual_seed(1))
        x, logJ = model.flow(z)
        x_g, logJ_g = model.flow(sun_gauge_transform(z, omega))
    assert (x_g - sun_gauge_transform(x, omega)).abs().max() < 1e-10
    assert (logJ_g - logJ).abs().max() < 1e-8


def test_notebook_sizes_fast_and_full():
    fast, full = notebook_sizes("fast"), notebook_sizes("full")
    assert full == NotebookSizes()
    # the Checks section's floors: 10^4 flow proposals, 4096 fresh samples per ESS
    for size in (fast, full):
        assert size.flow[0] * size.flow[1] >= 10_000 and size.ess_samples >= 4096
        assert size.groups == (2, 3)
    assert fast.single_steps < full.single_steps and fast.prefetch == 1
    with pytest.raises(ValueError, match="mode must be 'fast' or 'full'"):
        notebook_sizes("medium")


@pytest.mark.parametrize("N", [2, 3])
def test_single_matrix_flow_symmetries_hold_to_round_off(N):
    errors = single_matrix_equivariance(N, n_samples=64, seed=0)
    assert set(errors) == {"equivariance", "logJ", "round_trip"}
    assert all(v < 1e-10 for v in errors.values()), errors


def test_an_untrained_flow_is_haar_and_measures_exactly():
    """The flow starts as Haar measure: against the β = 0 target every weight is one."""
    model = build_single_matrix_flow(3, seed=0)
    gen = torch.Generator().manual_seed(0)
    m = measure_single_matrix_flow(model, SingleMatrixAction(0.0, (1.0,), 3), 4096, gen)
    assert m.ess == pytest.approx(1.0) and abs(m.kl) < 1e-4 and m.log_z == pytest.approx(0.0)
    assert m.exact == pytest.approx(0.0, abs=1e-12) and abs(m.pull) < 4
    # Haar: <((1/3) Re tr U)^2> = 1/18, so the error of the mean of 4096 draws is known
    assert m.error == pytest.approx((1 / 18 / 4096) ** 0.5, rel=0.1)
    assert m.phases.shape == (3 * 4096,) and np.all(np.abs(m.phases) <= np.pi)


def test_reweighting_a_short_trained_flow_reproduces_the_exact_trace():
    model, _, quality = train_single_matrix_flow(3, "b", 40, seed=0, n_eval=4096)
    gen = torch.Generator().manual_seed(5)
    m = measure_single_matrix_flow(model, single_matrix_action("b", 3), 8192, gen)
    assert m.exact == exact_sun.single_matrix_mean_trace(3, 9.0, (0.17, -0.65, 1.22))
    assert abs(m.pull) < 4, m.pull
    assert m.error < 0.01  # the pull has teeth
    assert 0 < m.kl < 1 and abs(m.ess - quality["ess"]) < 0.1
    table = single_matrix_table({"b": quality}, {"b": m})
    assert table.count("\n") == 2 and f"{m.exact:.4f}" in table


def test_targets_table_lists_exact_values():
    table = single_matrix_targets_table(3).splitlines()
    assert len(table) == 2 + len(SINGLE_MATRIX_TARGETS)
    assert f"{exact_sun.single_matrix_log_z(3, 9.0, (1.0, 0.0, 0.0)):.4f}" in table[-1]


def test_train_single_matrix_flows_keeps_the_order_and_the_options():
    flows = train_single_matrix_flows(2, ["c", "a"], 5, seed=0, n_eval=256)
    assert list(flows) == ["c", "a"] and all(q["n"] == 256 for _, q in flows.values())


def test_lattice_flows_load_or_train_and_say_which():
    shipped = lattice_flows([2, 3], 8, 4.0)
    assert [f.pretrained for f in shipped.values()] == [True, True]
    assert shipped[3].summary.startswith("SU(3): pretrained su3_L8_b4")
    sizes = NotebookSizes(lattice_train=2, lattice_layers=2, lattice_batch=4)
    trained = lattice_flows([2], 4, 2.0, pretrained=False, sizes=sizes)
    assert trained[2].steps == 2 and not trained[2].pretrained
    assert trained[2].summary.startswith("SU(2): trained 2 steps")
    with pytest.raises(FileNotFoundError, match="no pretrained model 'su2_L4_b2'"):
        lattice_flows([2], 4, 2.0)


def test_lattice_equivariance_leaves_the_model_alone():
    model = build_sun_flow(4, 3, n_layers=2, seed=0)
    errors = lattice_equivariance(model, seed=0)
    assert errors["equivariance"] < 1e-10 and errors["logJ"] < 1e-8
    assert next(model.parameters()).dtype == torch.float32


def test_study_runs_every_algorithm_and_tabulates_it():
    model = build_sun_flow(4, 2, n_layers=2, seed=0)
    study = run_sun_study(
        [2], 2.0, 4, {2: model}, flow=(4, 20), hmc=(4, 30), heatbath=(4, 30), seed=3
    )
    assert list(study) == [("flow", 2), ("hmc", 2), ("heatbath", 2)]
    assert study["hmc", 2].n_steps == 30 and study["flow", 2].n_chains == 4
    assert abs(study["hmc", 2].plaq_pull) < 4 and abs(study["heatbath", 2].plaq_pull) < 4
    table = sun_study_table(study).splitlines()
    assert len(table) == 5 and table[2].startswith("| SU(2) | flow |")
    exact = lattice_exact_table([2, 3], 4.0, 8).splitlines()
    assert len(exact) == 4 and f"{exact_sun.sun_plaquette(3, 4.0, 8):.6f}" in exact[3]
