"""Notebook 04's Explore widget: the Wilson–Dirac spectrum, det D and det² reweighting.

What the widget shows is checked against exact results: on free links its spectrum and
``log det D`` are the analytic free ones (to rounding); at β = 50 each configuration's
spectrum is that of free fermions in the flat background of its Polyakov loops; ``log|det D|``
and the sign agree with the dense determinant; at κ < 1/8 every eigenvalue lies in the disc
``|λ - 1| <= 8κ`` (no sign problem); at κ = 0 the weights are flat and the plaquette is the
exact quenched one within 4σ; at L = 2 the reweighted plaquette is the exact Nf = 2 one
(:func:`lqft_lab.exact.schwinger.schwinger_2x2`) within 4σ.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from lqft_lab import exact
from lqft_lab.actions import WilsonDirac
from lqft_lab.analysis import ess, reweight
from lqft_lab.exact.schwinger import free_log_det, free_spectrum, schwinger_2x2
from lqft_lab.observables import plaquette
from lqft_lab.samplers import sample_u1_exact
from lqft_lab.widgets.explore_schwinger import SchwingerExplorer

SMALL = dict(beta=1.0, kappa=0.3, L=4, n_steps=24)


def matched_distance(lam: np.ndarray, mu: np.ndarray) -> float:
    """Largest distance between two sets of eigenvalues paired one to one (optimally)."""
    cost = np.abs(lam[:, None] - mu[None, :])
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].max())


def draws(seed: int, chunk: int, n: int, L: int, beta: float) -> torch.Tensor:
    """The configurations the widget draws (its documented seeding), ``(n, 2, L, L)``."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [min(chunk, n - start) for start in range(0, n, chunk)]
    return torch.cat([sample_u1_exact(b, L, beta, generator, dtype=torch.float64) for b in sizes])


@pytest.fixture(scope="module")
def small_run():
    explorer = SchwingerExplorer(headless=True, chunk=8, seed=3)
    state = explorer.run(**SMALL)
    return explorer, state


def test_headless_run_reports_spectra_determinants_and_weights(small_run):
    explorer, state = small_run
    assert explorer.status == "done"
    line = explorer.status_line()
    assert line.startswith("done · step 24 / 24 · ESS ") and "det<0: " in line
    V2 = 2 * 4 * 4
    assert state["eigenvalues"].shape == (24, V2) and state["free"].shape == (V2,)
    for key in ("log_abs_det", "sign", "plaquette"):
        assert state[key].shape == (24,), key
    assert set(np.unique(state["sign"])) <= {-1, 1}
    assert state["steps"] == [8, 16, 24]
    assert all(0 < e <= 1 for e in state["ess"])
    log_w = 2 * state["log_abs_det"]
    assert state["ess"][-1] == pytest.approx(ess(log_w))
    assert (state["reweighted"][-1], state["reweighted_err"][-1]) == pytest.approx(
        reweight(state["plaquette"], log_w)
    )
    assert state["negative_fraction"] == pytest.approx(np.mean(state["sign"] < 0))
    assert state["exact_nf2"] is None and state["quenched"] == exact.u1_plaquette(1.0, 4)
    fig = explorer.figure()
    assert len(fig.axes) == 4  # spectrum, histogram, plaquette and its ESS twin
    assert "done" in fig._suptitle.get_text()
    assert f"{state['negative_fraction']:.1%}" in fig.axes[1].get_title()


def test_spectrum_determinant_and_sign_match_the_dense_operator(small_run):
    _, state = small_run
    theta = draws(3, 8, 24, 4, 1.0)  # the same configurations, by the documented seeding
    dense = WilsonDirac(0.3).dense(theta)
    np.testing.assert_allclose(state["plaquette"], plaquette(theta).numpy(), atol=1e-14)
    np.testing.assert_allclose(
        state["log_abs_det"], WilsonDirac(0.3).log_abs_det(theta).numpy(), atol=1e-10
    )
    det = torch.linalg.det(dense)
    assert float((det.imag.abs() / det.abs()).max()) < 1e-10  # γ5-hermiticity: det D real
    np.testing.assert_array_equal(state["sign"], np.sign(det.real.numpy()))
    # the spectrum is closed under complex conjugation (γ5 D γ5 = D†)
    for lam in state["eigenvalues"]:
        assert matched_distance(lam, lam.conj()) < 1e-10
    # at β = 1, κ = 0.3 (above the free κ_c = 1/4) some determinants are negative
    assert 0 < state["negative_fraction"] < 0.5, state["negative_fraction"]


def test_free_links_give_the_free_spectrum(monkeypatch):
    def free_links(batch_size, L, beta, generator, dtype):
        return torch.zeros(batch_size, 2, L, L, dtype=dtype)

    monkeypatch.setattr("lqft_lab.widgets.explore_schwinger.sample_u1_exact", free_links)
    state = SchwingerExplorer(headless=True).run(beta=1.0, kappa=0.24, L=6, n_steps=2)
    free = free_spectrum(6, 6, 0.24).numpy()
    np.testing.assert_array_equal(state["free"], free)
    for lam in state["eigenvalues"]:
        assert matched_distance(lam, free) < 1e-12
    np.testing.assert_allclose(state["log_abs_det"], free_log_det(6, 6, 0.24), atol=1e-10)
    assert (state["sign"] == 1).all() and state["ess"][-1] == pytest.approx(1.0)


def test_at_large_beta_the_spectrum_is_free_fermions_in_the_polyakov_loops():
    # β → ∞ leaves a flat connection, not U = 1: the Polyakov loops e^{iφ_μ} stay uniformly
    # distributed, and shift the momenta p_μ → p_μ + φ_μ / L_μ (a constant gauge field).
    L, kappa, beta, n = 6, 0.24, 50.0, 8
    state = SchwingerExplorer(headless=True, chunk=4, seed=1).run(
        beta=beta, kappa=kappa, L=L, n_steps=n
    )
    theta = draws(1, 4, n, L, beta).numpy()
    n_mode = np.arange(L)
    far_from_free = []
    for lam, t in zip(state["eigenvalues"], theta, strict=True):
        phi0 = np.angle(np.exp(1j * t[0].sum(axis=0)).mean())  # time loops, averaged over x1
        phi1 = np.angle(np.exp(1j * t[1].sum(axis=1)).mean())
        p0 = (2 * math.pi * (n_mode + 0.5) + phi0) / L  # antiperiodic in time
        p1 = (2 * math.pi * n_mode + phi1) / L
        p0, p1 = np.meshgrid(p0, p1, indexing="ij")  # (L, L)
        a = 1 - 2 * kappa * (np.cos(p0) + np.cos(p1))
        b = 2 * kappa * np.sqrt(np.sin(p0) ** 2 + np.sin(p1) ** 2)
        flat = np.concatenate([(a + 1j * b).ravel(), (a - 1j * b).ravel()])
        # plaquette fluctuations ~ 1/√β = 0.14 move eigenvalues by O(κ/√β · 1/√V): measured
        # at most 0.03 on these draws (seed 1); the bound 0.06 is twice that
        assert matched_distance(lam, flat) < 0.06
        far_from_free.append(matched_distance(lam, state["free"]))
    assert max(far_from_free) > 0.1  # the holonomy matters: the test can tell them apart


def test_below_kappa_one_eighth_the_spectrum_stays_in_the_disc():
    # ‖κ H‖ <= 8κ for the hopping term H, so |λ - 1| <= 8κ < 1 and det D > 0
    kappa = 0.1
    state = SchwingerExplorer(headless=True).run(beta=0.0, kappa=kappa, L=4, n_steps=16)
    assert np.abs(state["eigenvalues"] - 1).max() <= 8 * kappa + 1e-12
    assert (state["sign"] == 1).all() and state["negative_fraction"] == 0


def test_kappa_zero_is_the_quenched_theory():
    state = SchwingerExplorer(headless=True, chunk=100).run(beta=1.5, kappa=0.0, L=4, n_steps=400)
    np.testing.assert_array_equal(state["eigenvalues"], 1.0)  # D = 1
    assert state["ess"][-1] == 1.0
    value, error = state["reweighted"][-1], state["reweighted_err"][-1]
    quenched = exact.u1_plaquette(1.5, 4)
    assert error < 0.02  # power
    assert abs(value - quenched) < 4 * error, (value, error, quenched)


def test_reweighting_reproduces_the_exact_two_by_two_nf2_plaquette():
    beta, kappa = 1.0, 0.24
    state = SchwingerExplorer(headless=True, chunk=250).run(
        beta=beta, kappa=kappa, L=2, n_steps=1000
    )
    nf2 = schwinger_2x2(beta, kappa).plaquette
    assert state["exact_nf2"] == nf2
    value, error = state["reweighted"][-1], state["reweighted_err"][-1]
    # power: the fermions move the plaquette (0.505 → 0.595) by 6.5σ of this run's error
    assert abs(nf2 - state["quenched"]) > 5 * error, (nf2, state["quenched"], error)
    assert abs(value - nf2) < 4 * error, (value, error, nf2)


def test_the_same_seed_gives_the_same_numbers():
    one = SchwingerExplorer(headless=True, seed=5).run(L=4, n_steps=6)
    two = SchwingerExplorer(headless=True, seed=5).run(L=4, n_steps=6)
    np.testing.assert_array_equal(one["eigenvalues"], two["eigenvalues"])
    assert one["reweighted"] == two["reweighted"]


def test_headless_show_runs_once_and_displays(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    explorer = SchwingerExplorer(headless=True, L=4, n_steps=4)
    explorer.show()
    assert shown == [explorer] and explorer.status == "done"
    assert "image/png" in explorer._static_bundle()


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"L": 7}, "L must be even"),
        ({"L": 14}, "L must be <= 12"),
        ({"beta": -1.0}, "beta must be >= 0"),
        ({"kappa": 1.0}, "kappa must be < 1"),
        ({"kappa": -0.1}, "kappa must be >= 0"),
        ({"n_steps": 0}, "n_steps must be >= 1"),
        ({"n_steps": 2.5}, "n_steps must be an integer"),
    ],
)
def test_bad_input_raises_from_run_and_sets_the_message_from_start(overrides, match):
    explorer = SchwingerExplorer(headless=True)
    with pytest.raises(ValueError, match=match):
        explorer.run(**overrides)
    assert explorer.state is None and explorer.status == "idle"
    assert explorer.start(**overrides) is False  # the Run button never raises
    assert match.split()[0] in explorer.message and explorer.status == "idle"


@pytest.fixture
def no_frontend(monkeypatch):
    """Live mode as far as the env var goes, but no kernel and no browser."""
    monkeypatch.delenv("LQFT_LAB_HEADLESS", raising=False)


def test_stop_stops_a_live_background_run(no_frontend):
    explorer = SchwingerExplorer(headless=False, chunk=2)
    for name, value in (("L", 6), ("n_steps", 2000)):
        explorer._inputs[name].value = value
    explorer._run_button.clicks += 1  # what a click does
    assert explorer.running and explorer.status == "running"
    deadline = time.monotonic() + 60
    while explorer.state is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert explorer.state is not None
    explorer._stop_button.clicks += 1
    assert explorer.join(timeout=60) and explorer.status == "stopped"
    assert explorer.state["steps"][-1] < 2000
    explorer.refresh()
    assert explorer._figure_pane.object is not None
    assert explorer._status_pane.object.startswith("stopped · step ")
