"""Dashboards without a browser: headless figures, live threading and draining, validation.

What only a real browser can show (the Bokeh plots actually redrawing, panel's periodic
callback firing on the kernel's event loop) is left to the Chromium test; here the drain that
the periodic callback would call is called directly, and the rendered Bokeh data sources are
checked instead.
"""

from __future__ import annotations

import base64
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lqft_lab.actions import Phi4Action
from lqft_lab.flows import build_real_nvp
from lqft_lab.train import TrainConfig, Trainer
from lqft_lab.widgets import (
    Phi4Explorer,
    SamplingDashboard,
    TrainingDashboard,
    is_headless,
    plot_autocorrelation,
    plot_training_history,
)

METRICS = ("loss", "ess", "acceptance")


def _trainer(n_steps=30, log_every=5, action=None):
    torch.manual_seed(0)
    model = build_real_nvp(L=4, n_layers=2)
    config = TrainConfig(n_steps=n_steps, batch_size=64, log_every=log_every)
    return Trainer(model, action or Phi4Action(-4, 8), config)


def _column(history, key):
    return np.array([row[key] for row in history], dtype=float)


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the training thread")
        time.sleep(0.005)


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.setenv("LQFT_LAB_HEADLESS", "1")


@pytest.fixture
def no_frontend(monkeypatch):
    """Live mode as far as the env var goes, but no kernel and no browser."""
    monkeypatch.delenv("LQFT_LAB_HEADLESS", raising=False)


def test_is_headless_reads_the_env_var_and_the_kernel(monkeypatch):
    monkeypatch.setenv("LQFT_LAB_HEADLESS", "1")
    assert is_headless()
    monkeypatch.setenv("LQFT_LAB_HEADLESS", "0")
    assert not is_headless()
    monkeypatch.delenv("LQFT_LAB_HEADLESS")
    assert is_headless()  # pytest is no Jupyter kernel


def test_training_dashboard_headless_trains_synchronously_and_draws_one_figure(headless):
    trainer = _trainer()
    dash = TrainingDashboard(trainer, n_steps=30)
    assert dash.headless and dash._layout is None

    class Handle:  # an earlier display of the (then empty) dashboard
        bundles = []

        def update(self, bundle, raw):
            self.bundles.append(bundle)

    dash._handles.append(Handle())
    assert dash.start() is dash
    assert trainer.step == 30 and not dash.running and dash._thread is None

    data = dash.data
    assert data["step"] == [5, 10, 15, 20, 25, 30]
    for key in METRICS:
        np.testing.assert_allclose(data[key], _column(trainer.history, key))
    assert np.all(np.diff(data["loss"][:3]) < 0)  # the untrained flow improves at once

    fig = dash.figure()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for ax, key in zip(fig.axes, METRICS, strict=True):
        assert ax.get_title() == key
        (line,) = ax.get_lines()
        np.testing.assert_allclose(line.get_xdata(), data["step"])
        np.testing.assert_allclose(line.get_ydata(), data[key])

    bundle = dash._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "done" in bundle["text/plain"] and "step 30 / 30" in bundle["text/plain"]
    assert len(Handle.bundles) == 1 and "image/png" in Handle.bundles[0]
    dash.start()  # n_steps reached: a no-op
    assert trainer.step == 30 and len(dash.data["step"]) == 6


def test_training_dashboard_live_runs_in_a_thread_and_stops_early(no_frontend):
    from bokeh.models import ColumnDataSource

    trainer = _trainer(n_steps=100_000, log_every=5)
    threads = set()
    trainer.add_callback(lambda t, m: threads.add(threading.get_ident()))
    dash = TrainingDashboard(trainer, period_ms=50, headless=False)
    assert not dash.headless
    root = dash.layout.get_root()  # render the Bokeh models, as a notebook would

    dash.start()
    assert dash.running and dash._thread is not threading.current_thread()
    assert dash._start_button.disabled and not dash._stop_button.disabled
    _wait_for(lambda: trainer.step >= 15)
    dash.stop()
    assert dash.join(timeout=20)
    assert not dash.running and 15 <= trainer.step < 100_000
    assert threads == {dash._thread.ident}  # the callbacks ran on the training thread

    history = list(trainer.history)
    assert dash.stream.pending == len(history) >= 3
    assert len(dash.stream.buffer.data["step"]) == 0  # nothing drawn before the drain
    assert dash.drain() == len(history)
    assert dash.drain() == 0 and dash._periodic is None  # idle: periodic callback stopped
    buf = dash.stream.buffer.data
    np.testing.assert_allclose(buf["step"], _column(history, "step"))
    np.testing.assert_allclose(buf["loss"], _column(history, "loss"))
    np.testing.assert_allclose(buf["ess"], _column(history, "ess"))
    assert "stopped" in dash.status and f"step {trainer.step} /" in dash.status
    assert dash._status_pane.object == dash.status and not dash._start_button.disabled

    sources = {k: s.data[k] for s in root.select({"type": ColumnDataSource}) for k in s.data}
    np.testing.assert_allclose(sources["loss"], _column(history, "loss"))
    np.testing.assert_allclose(sources["acceptance"], _column(history, "acceptance"))


def test_training_dashboard_live_keeps_the_threads_exception(no_frontend):
    def broken(x):
        raise RuntimeError("action exploded")

    dash = TrainingDashboard(_trainer(n_steps=10, action=broken), headless=False)
    dash.start()
    with pytest.raises(RuntimeError, match="action exploded"):
        dash.join(timeout=20)
    dash.drain()
    assert dash.status.startswith("error: action exploded")
    assert "error: action exploded" in dash._status_pane.object


def _ar1_chain(T=4000, B=4, a=0.8, seed=0):
    """AR(1) chains x_t = a x_{t-1} + noise: exact tau_int = (1 + a) / (2 (1 - a)) = 4.5."""
    rng = np.random.default_rng(seed)
    x = np.zeros((T, B))
    x[0] = rng.normal(size=B) / np.sqrt(1 - a**2)
    for t in range(1, T):
        x[t] = a * x[t - 1] + rng.normal(size=B)
    accepted = (rng.random((T, B)) < 0.3).astype(float)
    return SimpleNamespace(
        observables={"x": torch.tensor(x)}, accepted=torch.tensor(accepted), every=2
    )


def test_sampling_dashboard_headless_analyses_an_ar1_chain(headless):
    chain = _ar1_chain()
    dash = SamplingDashboard(["x"])
    for step in (10, 20, 30):
        dash.callback(step, {"acceptance": 0.25, "x": step / 10})
    assert dash.data == {"step": [10, 20, 30], "acceptance": [0.25] * 3, "x": [1.0, 2.0, 3.0]}
    live = dash.figure()
    assert [ax.get_title() for ax in live.axes] == ["acceptance", "x"]
    np.testing.assert_allclose(live.axes[1].get_lines()[0].get_ydata(), [1, 2, 3])

    assert dash.finish(chain, log_weights=torch.zeros(64)) is dash
    res = dash.results["x"]
    assert abs(res.tau_int - 4.5) < 4 * res.tau_int_error
    assert dash.ess == pytest.approx(1.0)
    assert dash.acceptance == pytest.approx(float(chain.accepted.mean()))
    assert "| x |" in dash.summary()

    fig = dash.figure()
    assert isinstance(fig, Figure) and len(fig.axes) == 5  # 3 for x, acceptance, numbers
    trace, acf, tau, acc, _ = fig.axes
    np.testing.assert_allclose(trace.get_lines()[0].get_ydata(), chain.observables["x"][:, 0])
    np.testing.assert_allclose(trace.get_lines()[0].get_xdata()[:3], [2, 4, 6])  # every=2
    rho = acf.get_lines()[0].get_ydata()
    np.testing.assert_allclose(rho, res.rho[: len(rho)])
    assert rho[1] == pytest.approx(0.8, abs=0.05)
    windows = [ln.get_xdata()[0] for ln in tau.get_lines() if len(set(ln.get_xdata())) == 1]
    assert windows == [res.window]
    assert len(tau.collections) == 1  # the error band
    np.testing.assert_allclose(acc.get_lines()[1].get_ydata()[-1], dash.acceptance)
    assert "image/png" in dash._repr_mimebundle_()


def test_sampling_dashboard_live_drains_on_the_main_thread_only(no_frontend):
    dash = SamplingDashboard(["x", "swap 0↔1"], headless=False, period_ms=0,
                             unit_range=["swap 0↔1"])  # fmt: skip
    assert dash.unit_range == {"swap 0↔1"}
    dash.callback(10, {"acceptance": 0.5, "x": 1.5})  # main thread: drawn at once
    np.testing.assert_allclose(dash.stream.buffer.data["x"], [1.5])
    worker = threading.Thread(target=dash.callback, args=(20, {"acceptance": 0.4}))
    worker.start()
    worker.join()
    assert len(dash.stream.buffer.data["step"]) == 1 and dash.stream.pending == 1
    assert dash.drain() == 1
    np.testing.assert_allclose(dash.stream.buffer.data["acceptance"], [0.5, 0.4])
    assert np.isnan(dash.stream.buffer.data["x"][1])  # missing observable: a gap
    dash.finish(_ar1_chain(T=400, B=2))
    assert dash._periodic is None and len(dash._analysis) == 2
    assert dash._status_pane.object.startswith("finished")


def test_plot_helpers_draw_the_data():
    import matplotlib.pyplot as plt

    history = [{"step": s, "loss": 10.0 / s, "ess": 0.1 * s} for s in (1, 2, 3)]
    axes = plot_training_history(history, metrics=("loss", "ess"))
    np.testing.assert_allclose(axes[0].get_lines()[0].get_ydata(), [10, 5, 10 / 3])
    np.testing.assert_allclose(axes[1].get_lines()[0].get_ydata(), [0.1, 0.2, 0.3])
    res = SimpleNamespace(rho=np.array([1.0, 0.5, 0.25, 0.1]), window=2)
    ax = plot_autocorrelation(res, max_lag=3)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), res.rho)
    plt.close("all")


def test_explorer_rejects_bad_values_with_a_message(headless):
    explorer = Phi4Explorer(L=4, n_layers=2, n_steps=10, log_every=5)
    assert explorer.train(L=7) is None
    assert "L must be an even integer" in explorer.message and "7" in explorer.message
    assert explorer.train(lam=-1.0) is None and "lam" in explorer.message
    assert explorer.train(n_steps=0) is None and "n_steps" in explorer.message
    assert explorer.dashboard is None and explorer.params["L"] == 4
    with pytest.raises(ValueError, match="even"):
        explorer.run(L=5)

    dash = explorer.train(m2=-3.0)
    assert explorer.message == "" and dash.data["step"] == [5, 10]
    assert dash.trainer.action.m2 == -3.0 and dash.trainer.model.config.L == 4
    trainer = explorer.run(n_steps=5)
    assert trainer.step == 5 and len(trainer.history) == 1


def test_explorer_live_buttons(no_frontend):
    explorer = Phi4Explorer(L=4, n_layers=2, n_steps=20, log_every=5, headless=False)
    explorer._inputs["L"].value = 7
    explorer._train_button.clicks += 1  # what a click does
    assert explorer.dashboard is None and explorer._alert.visible
    assert "even" in explorer._alert.object

    explorer._inputs["L"].value = 6
    explorer._train_button.clicks += 1
    assert not explorer._alert.visible and explorer.dashboard is not None
    assert explorer.dashboard.join(timeout=30)
    assert explorer.dashboard.trainer.step == 20
    assert explorer.dashboard.trainer.model.config.L == 6
    assert explorer._dashboard_area[0] is explorer.dashboard.layout
