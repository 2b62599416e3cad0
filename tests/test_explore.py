"""The Explore widgets' base class, on a toy explorer: a running mean of Gaussian draws.

The toy's state is exact to check (the mean of ``n`` unit Gaussians is within 5/sqrt(n) of
``mu`` except with probability below 1e-6), so these tests can see a wrong state, not only
a missing one.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lqft_lab.widgets.explore import Explorer, Field


class RunningMean(Explorer):
    title = "running mean"
    fields = {
        "mu": Field("μ", float, 0.0),
        "n_chunks": Field("chunks", int, 5, low=1),
        "shape": Field("shape", str, "gauss", choices=("gauss", "flat")),
    }

    def __init__(self, gate: threading.Event | None = None, **kwargs):
        self.gate = gate  # lets a test hold the worker between chunks
        super().__init__(**kwargs)

    def check(self, params):
        if params["mu"] > 100:
            raise ValueError(f"mu must be <= 100, got {params['mu']}")
        return params

    def work(self, params, report, stopped):
        rng = np.random.default_rng(0)
        draws = np.zeros(0)
        for chunk in range(params["n_chunks"]):
            if stopped():
                return
            if self.gate is not None:
                self.gate.wait(5)
            draws = np.concatenate([draws, params["mu"] + rng.standard_normal(1000)])
            report(
                {
                    "mean": float(draws.mean()),
                    "n": draws.size,
                    "detail": f"chunk {chunk + 1} / {params['n_chunks']}",
                }
            )

    def draw(self, fig, state):
        fig.add_subplot().axhline(state["mean"])


def test_run_is_synchronous_and_reports_the_last_state():
    explorer = RunningMean(headless=True, mu=2.0)
    state = explorer.run(n_chunks=4)
    assert explorer.status == "done" and state["n"] == 4000
    assert abs(state["mean"] - 2.0) < 5 / np.sqrt(4000)
    assert explorer.values == {"mu": 2.0, "n_chunks": 4, "shape": "gauss"}
    assert explorer.status_line() == "done · chunk 4 / 4"
    fig = explorer.figure()
    assert fig.axes[0].lines[0].get_ydata()[0] == state["mean"]
    assert "done" in fig._suptitle.get_text()


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"mu": float("nan")}, "mu must be finite"),
        ({"mu": "a"}, "mu must be a number"),
        ({"mu": True}, "mu must be a number"),
        ({"mu": 101.0}, "mu must be <= 100"),
        ({"n_chunks": 0}, "n_chunks must be >= 1"),
        ({"n_chunks": 2.5}, "n_chunks must be an integer"),
        ({"shape": "cauchy"}, "shape must be one of gauss, flat"),
        ({"sigma": 1.0}, "unknown knobs"),
    ],
)
def test_bad_input_raises_from_run_and_shows_a_message_from_start(overrides, match):
    explorer = RunningMean(headless=True)
    with pytest.raises(ValueError, match=match):
        explorer.run(**overrides)
    assert explorer.status == "idle" and explorer.state is None
    assert explorer.start(**overrides) is False  # the Run button: never raises
    assert explorer.message and (match.split()[0] in explorer.message)
    assert explorer.status == "idle"


def test_integral_floats_are_accepted_as_integers():
    assert RunningMean(headless=True).validate(n_chunks=3.0)["n_chunks"] == 3


def test_unknown_knob_at_construction():
    with pytest.raises(ValueError, match="unknown knobs"):
        RunningMean(headless=True, sigma=1.0)


def test_headless_show_runs_once_and_displays_the_figure(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    explorer = RunningMean(headless=True)
    explorer.show()
    assert explorer.status == "done" and shown == [explorer]
    bundle = explorer._static_bundle()
    assert "image/png" in bundle and "done · chunk 5 / 5" in bundle["text/plain"]


def test_a_failing_work_ends_in_error_with_its_message():
    class Broken(RunningMean):
        def work(self, params, report, stopped):
            raise RuntimeError("toy failure")

    explorer = Broken(headless=True)
    assert explorer.start() is True
    assert explorer.status == "error" and explorer.message == "RuntimeError: toy failure"
    with pytest.raises(RuntimeError):
        explorer.run()


@pytest.fixture
def no_frontend(monkeypatch):
    """Live mode as far as the env var goes, but no kernel and no browser."""
    monkeypatch.delenv("LQFT_LAB_HEADLESS", raising=False)


def test_live_run_is_in_the_background_and_stop_stops_it(no_frontend):
    gate = threading.Event()
    explorer = RunningMean(gate=gate, headless=False, n_chunks=1000)
    explorer._inputs["mu"].value = 1.0
    explorer._run_button.clicks += 1  # what a click does
    assert explorer.running and explorer.status == "running"
    assert explorer._stop_button.disabled is False  # not None: the widget was synced
    gate.set()  # let chunks through
    deadline = time.monotonic() + 30
    while (explorer.state is None or explorer.state["n"] < 3000) and time.monotonic() < deadline:
        time.sleep(0.01)
    explorer._stop_button.clicks += 1
    assert explorer.join(timeout=30) and explorer.status == "stopped"
    n = explorer.state["n"]
    assert 3000 <= n < 1_000_000 and abs(explorer.state["mean"] - 1.0) < 5 / np.sqrt(n)
    explorer.refresh()  # the periodic callback's work: the figure and status follow
    assert explorer._figure_pane.object is not None
    assert explorer._status_pane.object.startswith("stopped · chunk")
    assert explorer._run_button.disabled is False and explorer._stop_button.disabled is True


def test_live_bad_input_shows_the_sentence_in_the_widget(no_frontend):
    explorer = RunningMean(headless=False)
    explorer._inputs["mu"].value = 500.0
    explorer._run_button.clicks += 1
    assert not explorer.running and explorer._alert.visible
    assert "mu must be <= 100" in explorer._alert.object
    explorer._inputs["mu"].value = 0.5
    explorer._run_button.clicks += 1
    assert explorer.join(timeout=30) and explorer.status == "done"
    assert not explorer._alert.visible
