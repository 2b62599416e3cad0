"""Notebook 06's Explore widget: the estimates it shows are those of the study function it
documents, its lines are the exact module's, and every estimate lies within 4σ of the exact
value it targets, the flowed one included."""

from __future__ import annotations

import math

import pytest

from lqft_lab.exact import u1_plaquette_derivative, u1_susceptibility_derivative
from lqft_lab.studies.correlated import OBSERVABLES, fh_estimates, train_fh_maps
from lqft_lab.widgets.explore_correlated import CorrelatedExplorer

pytestmark = pytest.mark.usefixtures("one_thread")

EXACT = {"plaquette": u1_plaquette_derivative, "chi_t": u1_susceptibility_derivative}


# n_steps = 2560 at L = 4 checks the documented cap of the Stein fit's draws (2048)
@pytest.mark.parametrize(("observable", "L", "n"), [("plaquette", 8, 1024), ("chi_t", 4, 2560)])
def test_estimates_are_those_of_fh_estimates_and_within_4_sigma(observable, L, n):
    explorer = CorrelatedExplorer(headless=True, seed=3)
    state = explorer.run(beta=5.0, L=L, delta=0.25, observable=observable, n_steps=n)
    assert explorer.status == "done"
    result = fh_estimates(5.0, L, n, delta=0.25, train_draws=min(n, 2048), seed=3)
    estimates = result.estimates[observable]
    assert state["methods"] == ["independent", "covariance", "reweighted", "stein"]
    assert state["methods"] == list(estimates)
    for key, attribute in (("values", "value"), ("errors", "error"), ("variances", "variance")):
        expected = [getattr(e, attribute) for e in estimates.values()]
        assert state[key] == pytest.approx(expected, abs=1e-12), key
    assert state["exact"] == pytest.approx(EXACT[observable](5.0, L), rel=1e-12)
    assert state["exact_difference"] == pytest.approx(
        result.exact_difference[observable], rel=1e-12
    )
    # the derivative and the difference quotient differ by O(δ²), yet both lines are drawn
    assert state["exact"] != state["exact_difference"]
    # independent draws: every error is an honest one (τ_int = 1/2), so 4σ is a real bound
    for name in OBSERVABLES:
        for method in result.estimates[name]:
            assert abs(result.pull(name, method)) < 4, (name, method, result.pull(name, method))
    assert explorer.figure() is not None


def test_flowed_estimate_is_the_trained_maps_and_within_4_sigma():
    explorer = CorrelatedExplorer(headless=True, map_steps=30, seed=2)
    params = explorer.validate(L=8, n_steps=512, flowed="on")
    states = []
    explorer.work(params, states.append, lambda: False)
    assert states[0]["detail"].startswith("training maps")
    assert all(math.isnan(v) for v in states[0]["values"])
    state = states[-1]
    assert state["methods"] == ["independent", "covariance", "reweighted", "flowed", "stein"]
    i = state["methods"].index("flowed")
    value, error = state["values"][i], state["errors"][i]
    assert math.isfinite(value) and 0 < error < math.inf
    # the flowed difference targets the exact difference quotient, not the derivative
    assert abs(value - state["exact_difference"]) < 4 * error, (value, error, state)
    # the same maps and draws reproduce it: map_steps, map_layers and seed as documented
    maps = train_fh_maps(6.0, 0.25, 8, n_steps=30, n_layers=8, seed=2)
    result = fh_estimates(6.0, 8, 512, delta=0.25, train_draws=512, maps=maps, seed=2)
    assert value == pytest.approx(result.estimates["plaquette"]["flowed"].value, abs=1e-12)


def test_bad_knobs_are_refused_and_stop_ends_the_run():
    explorer = CorrelatedExplorer(headless=True)
    with pytest.raises(ValueError, match="L must be a multiple of 4"):
        explorer.run(L=6)
    with pytest.raises(ValueError, match="takes β - δ below 0 at beta 1"):
        explorer.run(beta=1.0, delta=1.5)
    assert explorer.state is None and explorer.status == "idle"
    assert explorer.start(beta=1.0, delta=1.5) is False and "delta" in explorer.message
    states = []
    explorer.work(explorer.validate(), states.append, lambda: True)
    assert states == []  # stopped before any draw
