"""The figures notebook 04 (the Schwinger model) records in fast mode, read from the session's
one execution of the notebooks (``notebook_metrics`` in tests/conftest.py)."""

from __future__ import annotations

import pytest

STEM = "04_schwinger_pseudofermions"
SAMPLERS = ("hmc", "pf_hmc", "flow_mh")
OBSERVABLES = ("plaquette", "condensate", "pion_1", "Q")


@pytest.mark.notebooks
@pytest.mark.timeout(2700)
def test_notebook_04_records(notebook_metrics):
    meta = notebook_metrics["_meta"][STEM]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["mode"] == "fast"
    # The budget for notebook 04 in fast mode is 5 minutes on 2 CPU cores.
    assert meta["wall_s"] < 300, meta["wall_s"]
    figures = notebook_metrics[STEM]
    # Exact anchors of the operator: free spectrum and γ5-hermiticity to rounding; the
    # pseudofermion heatbath's <S_pf> = 2V.
    assert figures["free_spectrum_err"] < 1e-12 and figures["gamma5_err"] < 1e-12
    assert abs(figures["S_pf_pull"]) < 4
    # Both HMCs against the exact 2×2 quadrature, and <e^{-ΔH}> = 1.
    for sampler in ("hmc", "pf_hmc"):
        for obs in ("plaquette", "condensate", "pion_1", "boltzmann"):
            pull = figures[f"{obs}_pull_{sampler}_2x2"]
            assert abs(pull) < 4, (sampler, obs, pull)
    # Every sampler against the (det D)²-reweighted exact draws at L = 4, with τ_int of Q
    # and of the condensate recorded.
    assert figures["L"] == 4 and figures["reference_ess"] > 0.2
    for sampler in SAMPLERS:
        for obs in OBSERVABLES:
            pull = figures[f"{obs}_pull_{sampler}"]
            assert abs(pull) < 4, (sampler, obs, pull)
        assert figures[f"tau_Q_{sampler}"] > 0 and figures[f"tau_condensate_{sampler}"] > 0
        assert 0 < figures[f"acceptance_{sampler}"] <= 1
        # seconds per independent sample: time per chain-step × 2 τ_int, for Q and Σ
        for obs in ("Q", "condensate"):
            cost = figures[f"cost_{obs}_{sampler}"]
            tau = figures[f"tau_int_{obs}_{sampler}"]
            expected = figures[f"seconds_per_step_{sampler}"] * 2 * tau
            assert cost > 0 and cost == pytest.approx(expected), (sampler, obs)
    # The pulls have power: the plaquette to better than 1% in every sampler.
    for sampler in SAMPLERS:
        assert figures[f"plaquette_{sampler}_err"] < 0.01 * figures[f"plaquette_{sampler}"]
    # DESIGN.md: ESS on >= 4096 fresh samples, acceptance on >= 10^4 proposals.
    assert figures["ess_samples"] >= 4096 and figures["n_proposals"] >= 10_000
    assert 0 < figures["ess"] <= 1
    # Fast mode's point has a shipped flow (data/models/schwinger_L4_b2_k0.24), better than
    # a few minutes of training (ESS 0.49 when saved, against about 0.12): flow-MH uses it.
    assert figures["flow_used"] == "shipped" and figures["ess"] > 0.35, figures["ess"]
    # Criticality: the charge-one configuration's det D changes sign below κ_c, the free
    # configuration's never.
    assert figures["det_sign_flips_Q1"] >= 1 and figures["det_sign_flips_Q0"] == 0
    assert 0.24 < figures["kappa_cross_Q1"] < 0.2773
    # Part 2, links and pseudofermions together: with the exact conditional the joint
    # weights are the marginal ones; every joint sampler agrees with the reference, from
    # at least 10^4 proposals; MH-within-Gibbs and the pseudofermion flow pay for the
    # pseudofermion's noise in acceptance.
    assert abs(figures["ess_exact_conditional"] - figures["ess_marginal"]) < 1e-9
    assert 0 < figures["ess_pseudofermion_flow"] <= 1
    for sampler in ("joint_flow", "gibbs", "joint_exact"):
        for obs in OBSERVABLES:
            pull = figures[f"{obs}_pull_{sampler}"]
            assert abs(pull) < 4, (sampler, obs, pull)
        assert 0 < figures[f"acceptance_{sampler}"] <= 1
        assert figures[f"cost_condensate_{sampler}"] > 0
    assert figures["acceptance_gibbs"] < figures["acceptance_joint_exact"]
    # Scaling: one proposal's parts timed side by side at L = 4 ... 32; the dense
    # determinant's cost grows faster than the CG solve's (V³ against V × iterations).
    scan = [4, 8, 16, 32]
    ratios = [figures[f"det_over_cg_L{L}"] for L in scan]
    assert ratios[-1] > 4 * ratios[0], ratios
    for L in scan:
        assert figures[f"joint_proposal_seconds_L{L}"] > 0 and figures[f"cg_iterations_L{L}"] >= 1
