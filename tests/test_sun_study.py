"""Notebook 03's helpers: targets, runs of the three lattice samplers, and bad input.

The samplers and flows have their own contract and exactness tests; here the compositions
are checked: every run reports the exact plaquette it is compared with, and the analysed
chain reproduces it.
"""

from __future__ import annotations

import pytest
import torch

from lqft_lab.exact import sun as exact_sun
from lqft_lab.flows import build_sun_flow
from lqft_lab.studies.sun import (
    SINGLE_MATRIX_TARGETS,
    run_sun_algorithm,
    single_matrix_action,
    train_single_matrix_flow,
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
