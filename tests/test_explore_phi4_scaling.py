"""Notebook 01b's Explore widget: the chain it shows is the study's, and exact where it can be.

Anchors: on a free field (λ = 0) χ₂ = Σ_x G(x) is known exactly (``exact.free_field_chi2``),
so the explorer's running estimate must agree with it within 4σ of its Γ-method error; on
the published ensembles the chunked chain must be the very chain that
:func:`~lqft_lab.studies.phi4_scaling.run_algorithm` runs with the same seed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from lqft_lab import exact
from lqft_lab.studies.phi4_scaling import ENSEMBLES, Ensemble, run_algorithm
from lqft_lab.widgets.explore import Field
from lqft_lab.widgets.explore_phi4_scaling import Phi4ScalingExplorer

FREE = Ensemble("free", 6, 1.0, 0.0, float("nan"), float("nan"))


class FreeFieldExplorer(Phi4ScalingExplorer):
    """The explorer with a free-field ensemble added (it has no shipped flow)."""

    ensembles = {**ENSEMBLES, "free": FREE}
    fields = {
        **Phi4ScalingExplorer.fields,
        "ensemble": Field("ensemble", str, "free", choices=(*ENSEMBLES, "free")),
    }


def test_the_chunked_chain_is_run_algorithms_chain(one_thread):
    explorer = Phi4ScalingExplorer(headless=True, n_steps=100, n_chains=8, seed=3)
    state = explorer.run()
    assert explorer.status == "done" and state["detail"] == "step 100 / 100"
    reference = run_algorithm("flow", ENSEMBLES["E1"], 100, n_chains=8, seed=3,
                              model=explorer.flow("E1"))  # fmt: skip
    assert state["value"][-1] == pytest.approx(reference.chi2.value, rel=1e-12)
    assert state["error"][-1] == pytest.approx(reference.chi2.error, rel=1e-9)
    assert state["tau"][-1] == pytest.approx(reference.chi2.tau_int, rel=1e-9)
    assert state["acceptance"] == pytest.approx(reference.acceptance, rel=1e-12)
    # the shipped E1 flow was trained to acceptance 0.4 (0.43 on 16 384 fresh samples);
    # 800 proposals scatter that by about 0.02
    assert 0.3 < state["acceptance"] < 0.55
    assert state["steps"][-1] == 100 and (np.diff(state["steps"]) > 0).all()
    assert state["trace"].shape == (100, 4) and (state["trace"] >= 0).all()  # V M² >= 0
    fig = explorer.figure()
    trace_ax, tau_ax = fig.axes
    assert len(trace_ax.lines) == 4 and "E1 (L = 6)" in tau_ax.get_title()
    assert "done · step 100 / 100" in fig._suptitle.get_text()


@pytest.mark.parametrize("sampler", ["hmc", "local"])
def test_free_field_chi2_is_exact_within_its_error(sampler, one_thread):
    state = FreeFieldExplorer(headless=True).run(sampler=sampler, n_steps=400, n_chains=16)
    chi2_exact = exact.free_field_chi2(FREE.lattice, FREE.m2)
    value, error = state["value"][-1], state["error"][-1]
    assert abs(value - chi2_exact) < 4 * error, (value, error, chi2_exact)
    assert error < 0.1 * chi2_exact  # the comparison has teeth
    assert state["tau"][-1] > 0.5 and state["tau_error"][-1] > 0  # local chains are correlated
    assert state["converged"][-1]


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"ensemble": "E9"}, "ensemble must be one of E1, E2, E3, E4, E5"),
        ({"sampler": "wolff"}, "sampler must be one of flow, hmc, local"),
        ({"n_steps": 0}, "n_steps must be >= 1"),
        ({"n_steps": -5}, "n_steps must be >= 1"),
        ({"n_steps": 5}, "n_steps must be at least 20"),
        ({"n_steps": 10**7}, "n_steps must be <= 1e"),
        ({"n_chains": 0}, "n_chains must be >= 1"),
        ({"observable": "binder"}, "observable must be one of"),
    ],
)
def test_bad_input_is_a_sentence(overrides, match):
    explorer = Phi4ScalingExplorer(headless=True)
    with pytest.raises(ValueError, match=match):
        explorer.run(**overrides)
    assert explorer.start(**overrides) is False  # what Run does: no exception
    assert match.split()[0] in explorer.message and explorer.state is None


def test_an_ensemble_without_a_shipped_flow_is_refused():
    explorer = FreeFieldExplorer(headless=True)
    with pytest.raises(ValueError, match="free has no shipped flow.*choose sampler hmc or local"):
        explorer.run(sampler="flow")
    assert explorer.start(sampler="flow") is False and "no shipped flow" in explorer.message


def test_headless_show_runs_once_and_shows_the_figure(monkeypatch, one_thread):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    explorer = Phi4ScalingExplorer(headless=True, sampler="hmc", n_steps=40, n_chains=4)
    explorer.show()
    assert explorer.status == "done" and shown == [explorer]
    assert "image/png" in explorer._static_bundle()


@pytest.mark.parametrize(
    "n_steps, analyses, phase",
    [(10**6, 0, "thermalising: step"), (5000, 2, "step")],  # Stop while discarding / measuring
)
def test_live_stop_stops_the_background_chain(n_steps, analyses, phase, monkeypatch):
    monkeypatch.delenv("LQFT_LAB_HEADLESS", raising=False)  # live, with no browser
    explorer = Phi4ScalingExplorer(headless=False, sampler="hmc", n_steps=n_steps, n_chains=4)
    explorer._run_button.clicks += 1  # what a click does
    assert explorer.running and explorer.status == "running"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        explorer.state is None or len(explorer.state.get("steps", ())) < analyses
    ):
        time.sleep(0.05)
    explorer._stop_button.clicks += 1
    assert explorer.join(timeout=60) and explorer.status == "stopped"
    assert explorer.state["detail"].startswith(phase)
    if analyses:
        assert analyses <= len(explorer.state["steps"]) and explorer.state["steps"][-1] < n_steps
    explorer.refresh()  # the periodic callback: figure and status follow the last state
    assert explorer._figure_pane.object is not None
    assert explorer._status_pane.object.startswith(f"stopped · {phase}")
