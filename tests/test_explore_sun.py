"""Notebook 03's Explore widget: a single-matrix spectral flow trained live on a chosen target.

The physics it shows is checked against :mod:`lqft_lab.exact.sun`: the reweighted
``⟨(1/N) Re tr U⟩`` within 4σ of the Weyl formula, the Haar target exact from the first
measurement, and the learned eigenphase histogram no further from the exact density than
Pinsker's inequality allows for the flow's (exactly normalised) KL divergence.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lqft_lab.exact import sun as exact_sun
from lqft_lab.groups.sun import haar
from lqft_lab.widgets.explore_sun import (
    SpectralFlowExplorer,
    eigenphase_density,
    parse_coeffs,
    plot_eigenphase_density,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_headless_default_run_learns_boyda_target_a():
    explorer = SpectralFlowExplorer(headless=True)
    state = explorer.run()
    assert explorer.status == "done" and explorer.values["coeffs"] == "0.98, -0.63, -0.21"
    assert state["steps"] == [0, 25, 50, 75, 100, 125, 150]
    # from the Haar measure (ESS ~ 0.1) to a good flow in 150 steps
    assert state["ess"][0] < 0.3 and state["ess"][-1] > 0.9, state["ess"]
    assert state["kl"][-1] < 0.05 * state["kl"][0], state["kl"]
    pull = (state["trace"] - state["trace_exact"]) / state["trace_error"]
    assert abs(pull) < 4 and state["trace_error"] < 0.01, pull
    assert state["trace_exact"] == exact_sun.single_matrix_mean_trace(3, 9.0, (0.98, -0.63, -0.21))
    edges = state["edges"]
    exact = exact_sun.single_matrix_eigenphase_histogram(3, 9.0, (0.98, -0.63, -0.21), edges)
    np.testing.assert_allclose(state["exact"] * np.diff(edges), exact, atol=1e-14)
    # Pinsker: the binned one-eigenphase marginals differ in total variation by at most
    # sqrt(KL/2) (data processing); 0.03 covers the histogram's own noise (its expected TV
    # from 4096 draws in 40 bins is about 0.02; the KL estimate's error is added too).
    tv = 0.5 * np.abs(state["sampled"] - state["exact"]) @ np.diff(edges)
    kl_bound = max(state["kl"][-1] + 3 * state["kl_error"][-1], 0.0)
    assert tv <= np.sqrt(kl_bound / 2) + 0.03, (tv, state["kl"][-1])
    fig = explorer.figure()
    density = fig.axes[0]
    np.testing.assert_allclose(density.lines[0].get_ydata(), state["exact"])
    assert "done · step 150 / 150" in fig._suptitle.get_text()


def test_haar_target_is_exact_from_the_start():
    """β = 0 is the Haar measure, which the untrained flow already is: KL 0 and ESS 1."""
    state = SpectralFlowExplorer(headless=True, n_eval=2048).run(
        N=2, beta=0.0, coeffs="1", n_steps=1
    )
    assert state["steps"] == [0, 1]
    assert abs(state["kl"][0]) < 1e-5 and state["ess"][0] == pytest.approx(1.0)
    assert state["trace_exact"] == pytest.approx(0.0, abs=1e-12)
    # SU(2): one eigenphase has density sin²φ/π; its average over each bin, analytically
    lo, hi = state["edges"][:-1], state["edges"][1:]
    antiderivative = lambda x: (x / 2 - np.sin(2 * x) / 4) / np.pi  # noqa: E731
    np.testing.assert_allclose(
        state["exact"], (antiderivative(hi) - antiderivative(lo)) / (hi - lo), atol=1e-12
    )
    np.testing.assert_allclose(state["haar"], state["exact"], atol=1e-14)


def test_su4_runs_and_reweights_to_the_exact_trace():
    explorer = SpectralFlowExplorer(headless=True, n_eval=2048, chunk=10)
    state = explorer.run(N=4, beta=4.0, coeffs="1", n_steps=20)
    assert state["N"] == 4 and state["steps"] == [0, 10, 20]
    assert abs(state["trace"] - state["trace_exact"]) < 4 * state["trace_error"]
    assert state["trace_exact"] == pytest.approx(exact_sun.single_matrix_mean_trace(4, 4.0, (1,)))


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"N": 1}, "N must be 2, 3 or 4"),
        ({"N": 5}, "N must be 2, 3 or 4"),
        ({"N": 2.5}, "N must be an integer"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"beta": float("inf")}, "beta must be finite"),
        ({"beta": 50.0}, "beta must be <= 12"),
        ({"coeffs": "1, nan"}, "coeffs must be finite"),
        ({"coeffs": "1, 0, 0, 0.5"}, "coeffs must hold 1 to 3 numbers"),
        ({"coeffs": " "}, "coeffs must hold 1 to 3 numbers"),
        ({"coeffs": "one, two"}, "coeffs must be numbers separated by commas"),
        ({"coeffs": "3"}, "coeffs must each lie in"),
        ({"coeffs": 0.5}, "coeffs must be a string"),
        ({"n_steps": 0}, "n_steps must be >= 1"),
    ],
)
def test_bad_input_raises_from_run_and_shows_a_sentence_from_start(overrides, match):
    explorer = SpectralFlowExplorer(headless=True)
    with pytest.raises(ValueError, match=match):
        explorer.run(**overrides)
    assert explorer.status == "idle" and explorer.state is None
    assert explorer.start(**overrides) is False  # what the Run button calls: never raises
    assert match in explorer.message and explorer.status == "idle"


def test_coefficients_are_read_and_normalised():
    assert parse_coeffs("0.98, -0.63 -0.21") == (0.98, -0.63, -0.21)
    assert parse_coeffs("1,0,0") == (1.0, 0.0, 0.0)
    params = SpectralFlowExplorer(headless=True).validate(coeffs="1,0 , 0")
    assert params["coeffs"] == "1, 0, 0"


def test_headless_show_runs_once_and_displays_the_figure(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    explorer = SpectralFlowExplorer(headless=True, n_steps=10, chunk=5, n_eval=512)
    explorer.show()
    assert explorer.status == "done" and shown == [explorer]
    bundle = explorer._static_bundle()
    assert "image/png" in bundle and "done · step 10 / 10" in bundle["text/plain"]


def test_eigenphase_density_of_haar_samples_matches_weyl():
    """Pooled eigenphases of Haar SU(3) matrices against the exact marginal, bin by bin.

    A matrix puts X_b <= 3 of its phases in bin b, so Var(X_b) <= 3 E[X_b] and the pooled
    fraction has standard deviation at most sqrt(p_b / n): 5 of those bound every bin.
    """
    n = 20_000
    U = haar(n, 3, generator=torch.Generator().manual_seed(0))
    edges = np.linspace(-np.pi, np.pi, 31)
    sampled, exact = eigenphase_density(U, 3, 0.0, (1.0,), edges)
    p = exact * np.diff(edges)
    assert p.sum() == pytest.approx(1.0)
    assert np.all(np.abs(sampled * np.diff(edges) - p) < 5 * np.sqrt(p / n))
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    plot_eigenphase_density(ax, U, 3, 0.0, (1.0,), edges, title="Haar")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), exact)
    assert ax.get_title() == "Haar"


@pytest.fixture
def no_frontend(monkeypatch):
    """Live mode as far as the env var goes, but no kernel and no browser."""
    monkeypatch.delenv("LQFT_LAB_HEADLESS", raising=False)


def test_live_run_is_in_the_background_and_stop_stops_it(no_frontend):
    explorer = SpectralFlowExplorer(headless=False, chunk=5, n_eval=256, batch_size=32)
    explorer._inputs["N"].value = 2
    explorer._inputs["n_steps"].value = 100_000
    explorer._run_button.clicks += 1  # what a click does
    assert explorer.running and explorer.status == "running"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = explorer.state
        if state is not None and len(state.get("steps", [])) >= 3:
            break
        time.sleep(0.05)
    explorer._stop_button.clicks += 1
    assert explorer.join(timeout=60) and explorer.status == "stopped"
    state = explorer.state
    assert state["N"] == 2 and 10 <= state["steps"][-1] < 100_000
    explorer.refresh()  # the periodic callback's work: the figure and status follow
    assert explorer._figure_pane.object is not None
    assert explorer._status_pane.object.startswith("stopped · step")
    assert explorer._run_button.disabled is False and explorer._stop_button.disabled is True
