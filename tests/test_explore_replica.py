"""Notebook 05's Explore widget: the swap acceptance per pair it shows is that of the exact
draws it documents, the erfc prediction is the exact module's, and the maps raise it."""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions import U1WilsonAction
from lqft_lab.exact.u1 import u1_swap_acceptance
from lqft_lab.samplers import sample_u1_exact
from lqft_lab.studies.replica_exchange import heatbath_ladder, swap_log_ratios
from lqft_lab.widgets.explore_replica import ReplicaExplorer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_plain_acceptance_is_that_of_the_documented_draws():
    explorer = ReplicaExplorer(headless=True, seed=4)
    state = explorer.run(beta=5.0, L=8, n_rungs=3, spacing=0.5, n_steps=256)
    assert explorer.status == "done" and state["betas"] == [5.0, 4.5, 4.0]
    gen = torch.Generator().manual_seed(4)
    for i in range(2):
        a, b = state["betas"][i], state["betas"][i + 1]
        lower = sample_u1_exact(256, 8, a, gen, dtype=torch.float64)
        upper = sample_u1_exact(256, 8, b, gen, dtype=torch.float64)
        ladder = heatbath_ladder([U1WilsonAction(a), U1WilsonAction(b)])
        expected = swap_log_ratios(ladder, 0, lower, upper).exp().clamp(max=1).mean().item()
        assert state["plain"][i] == pytest.approx(expected, abs=1e-12)
        assert state["predicted"][i] == pytest.approx(u1_swap_acceptance(a, b, 8))
        # the measurement agrees with the prediction (0.02 for the Gaussian approximation)
        assert abs(state["plain"][i] - state["predicted"][i]) < 0.02 + 4 * state["plain_err"][i]
    assert all(math.isnan(m) for m in state["mapped"])


def test_maps_raise_the_acceptance_and_bad_ladders_are_refused():
    explorer = ReplicaExplorer(headless=True, map_steps=60, seed=5)
    state = explorer.run(beta=5.0, L=8, n_rungs=2, spacing=1.0, maps="on", n_steps=256)
    assert state["mapped"][0] > state["plain"][0] + 0.1, state
    with pytest.raises(ValueError, match="below β = 0"):
        explorer.run(beta=1.0, n_rungs=4, spacing=0.5)
    with pytest.raises(ValueError, match="L must be a multiple of 4"):
        explorer.run(L=6)
