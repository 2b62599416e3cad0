"""The figures notebook 06 (correlated ensembles, Feynman–Hellmann) records in fast mode,
read from the session's one execution of the notebooks (``notebook_metrics`` in
tests/conftest.py)."""

from __future__ import annotations

import math

import pytest

STEM = "06_correlated_ensembles"
METHODS = ("independent", "covariance", "reweighted", "flowed", "stein")


@pytest.mark.notebooks
@pytest.mark.timeout(2700)
def test_notebook_06_records(notebook_metrics):
    meta = notebook_metrics["_meta"][STEM]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["mode"] == "fast"
    # The budget for notebook 06 in fast mode is 5 minutes on 2 CPU cores.
    assert meta["wall_s"] < 300, meta["wall_s"]
    figures = notebook_metrics[STEM]
    assert figures["beta"] == 6.0 and figures["delta"] == 0.25
    # Every estimator's value, error and pull for d⟨cos θ_P⟩/dβ at L = 8, the flowed one
    # included, each within 4σ of its exact target (the derivative, or the difference
    # quotient for the finite-δ estimators).
    for method in METHODS:
        key = f"plaquette_{method}_b6_L8"
        assert math.isfinite(figures[f"value_{key}"]) and figures[f"error_{key}"] > 0, method
        assert abs(figures[f"pull_{key}"]) < 4, method
    # At every volume, every estimator of both derivatives that ran agrees with exact.
    pulls = {k: v for k, v in figures.items() if k.startswith("pull_")}
    assert len(pulls) >= 2 * (3 * 4 + 1), sorted(pulls)
    assert all(abs(v) < 4 for v in pulls.values()), pulls
    # The noise: the linearised flow beats reweighting by more than 5x for the plaquette's
    # derivative at every L, the flowed maps beat it at L = 8, with weights near 1.
    for L in (8, 16, 32):
        stein = figures[f"variance_plaquette_stein_b6_L{L}"]
        assert stein < figures[f"variance_plaquette_reweighted_b6_L{L}"] / 5, L
    assert (
        figures["variance_plaquette_flowed_b6_L8"] < figures["variance_plaquette_reweighted_b6_L8"]
    )
    assert figures["flowed_ess"] > 0.5
    # On heatbath chains (L = 16): every estimator within 4σ of its Γ-method error, the
    # plaquette's τ_int near 1/2, and the Stein estimator still far below the covariance.
    for method in ("covariance", "reweighted", "stein"):
        assert abs(figures[f"chain_pull_{method}"]) < 4, method
        assert 0.4 < figures[f"chain_tau_{method}"] < 3, method
    assert figures["chain_variance_stein"] < figures["chain_variance_covariance"] / 5
