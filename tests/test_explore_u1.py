"""Notebook 02's Explore widget: train a small U(1) flow, its charge against the exact P(Q).

The physics the widget shows is checked against the character expansion
(:func:`lqft_lab.exact.u1_charge_distribution`, :func:`lqft_lab.exact.u1_log_z`): the
reweighted charge histogram within 4σ of the exact P(Q), and the fresh-sample KL(q‖p) >= 0
within 4σ (it is a KL divergence). At L = 4, β = 0.5 even a barely trained flow has a
large ESS, so the comparison has power.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from lqft_lab import exact
from lqft_lab.widgets.explore_u1 import U1FlowExplorer

TINY = dict(beta=0.5, L=4, n_layers=2, n_steps=20)


@pytest.fixture(scope="module")
def tiny_state():
    explorer = U1FlowExplorer(headless=True, hidden=(4,), n_chunks=2)
    state = explorer.run(**TINY)
    assert explorer.status == "done" and explorer.status_line() == "done · step 20 / 20"
    return explorer, state


def test_headless_run_reports_a_curve_and_a_histogram(tiny_state):
    explorer, state = tiny_state
    assert state["step"] == [0, 10, 20] and state["n_fresh"] == 4096
    for key in ("kl", "kl_err", "ess", "acceptance"):
        assert len(state[key]) == 3 and all(np.isfinite(state[key])), key
    assert all(0 < v <= 1 for v in state["ess"] + state["acceptance"])
    assert state["kl"][-1] < state["kl"][0]  # training helps
    assert state["raw"].sum() == pytest.approx(1.0)
    fig = explorer.figure()
    assert len(fig.axes) == 3
    assert len(fig.axes[2].patches) == len(state["charges"])  # one bar per charge
    assert "done" in fig._suptitle.get_text()


def test_the_histogram_reweights_to_the_exact_charge_distribution(tiny_state):
    _, state = tiny_state
    charges = state["charges"]
    q_max = int(charges[-1])
    _, p_exact = exact.u1_charge_distribution(0.5, 4, q_max=q_max)
    np.testing.assert_allclose(state["exact"], p_exact)
    for q in (-1, 0, 1):
        i = q + q_max
        err = state["reweighted_err"][i]
        assert err < 0.1 * p_exact[i]  # power: each P(Q) to 10%
        assert abs(state["reweighted"][i] - p_exact[i]) < 4 * err, (q, state["reweighted"][i])
    # a KL divergence: the fresh-sample estimate (loss + exact log Z) is >= 0 within 4σ
    for kl, err in zip(state["kl"], state["kl_err"], strict=True):
        assert kl > -4 * err, (kl, err)
    assert state["kl_Q"] < state["kl"][-1] + 4 * state["kl_err"][-1]  # data processing


def test_headless_show_runs_once_and_displays(monkeypatch):
    # what the notebook's Explore cell does under papermill
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    explorer = U1FlowExplorer(
        headless=True, hidden=(4,), n_chunks=1, n_fresh=512, beta=0.5, L=4, n_layers=1, n_steps=2
    )
    explorer.show()
    assert shown == [explorer] and explorer.status == "done"
    assert "image/png" in explorer._static_bundle()


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"L": 7}, "L must be a multiple of 4"),
        ({"L": 6}, "L must be a multiple of 4"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"n_layers": 0}, "n_layers must be >= 1"),
        ({"kernel": "affine"}, "kernel must be one of ncp, spline"),
        ({"n_steps": 2.5}, "n_steps must be an integer"),
    ],
)
def test_bad_input_raises_from_run_and_sets_the_message_from_start(overrides, match):
    explorer = U1FlowExplorer(headless=True)
    with pytest.raises(ValueError, match=match):
        explorer.run(**overrides)
    assert explorer.state is None and explorer.status == "idle"
    assert explorer.start(**overrides) is False  # the Run button never raises
    assert match.split()[0] in explorer.message and explorer.status == "idle"


def test_spline_kernel_runs():
    state = U1FlowExplorer(headless=True, hidden=(4,), n_chunks=1, n_fresh=512).run(
        beta=1.0, L=4, n_layers=2, n_steps=5, kernel="spline"
    )
    assert state["step"] == [0, 5] and all(np.isfinite(state["kl"]))


@pytest.fixture
def no_frontend(monkeypatch):
    """Live mode as far as the env var goes, but no kernel and no browser."""
    monkeypatch.delenv("LQFT_LAB_HEADLESS", raising=False)


def test_stop_stops_a_live_background_run(no_frontend):
    explorer = U1FlowExplorer(headless=False, hidden=(4,), n_chunks=2, n_fresh=512)
    for name, value in (("beta", 1.0), ("L", 4), ("n_layers", 2), ("n_steps", 20_000)):
        explorer._inputs[name].value = value
    explorer._run_button.clicks += 1  # what a click does
    assert explorer.running and explorer.status == "running"
    deadline = time.monotonic() + 60
    while explorer.state is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first point: the flow before training
    assert explorer.state is not None and explorer.running
    t0 = time.monotonic()
    explorer._stop_button.clicks += 1
    assert explorer.join(timeout=60) and explorer.status == "stopped"
    assert time.monotonic() - t0 < 30  # within a few training steps, not a 10 000-step chunk
    assert explorer.state["step"] == [0]
    explorer.refresh()
    assert explorer._figure_pane.object is not None
    assert explorer._status_pane.object.startswith("stopped · step 0 / 20000")
    assert math.isfinite(explorer.state["kl"][0])
