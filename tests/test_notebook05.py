"""The figures notebook 05 (replica exchange) records in fast mode, read from the session's
one execution of the notebooks (``notebook_metrics`` in tests/conftest.py)."""

from __future__ import annotations

import pytest

STEM = "05_replica_exchange"


@pytest.mark.notebooks
@pytest.mark.timeout(2700)
def test_notebook_05_records(notebook_metrics):
    meta = notebook_metrics["_meta"][STEM]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["mode"] == "fast"
    # The budget for notebook 05 in fast mode is 5 minutes on 2 CPU cores.
    assert meta["wall_s"] < 300, meta["wall_s"]
    figures = notebook_metrics[STEM]
    assert figures["L"] == 8 and figures["beta"] == 6.0
    # Every rung of every ladder against its exact plaquette; χ_t of the physical rung.
    # The swap identities within 4σ of their Γ-method errors, and within 0.1 where every
    # pair swaps often. DR-REX's last pair accepts about 0.2: there e^r is heavy-tailed and
    # its gap reads 0.11 at about 1σ, so only the σ bound applies to it.
    for ladder in ("rex", "trex", "ptbc", "drrex"):
        assert figures[f"max_pull_{ladder}"] < 4, ladder
        assert figures[f"identity_pull_{ladder}"] < 4, ladder
        assert figures[f"round_trips_{ladder}"] > 1, ladder
    for ladder in ("rex", "trex", "ptbc"):
        assert figures[f"identity_gap_{ladder}"] < 0.1, ladder
    assert abs(figures["chi_t_pull"]) < 4
    # Plain swaps fall with the volume (the erfc law; the notebook checks the values).
    volume = [figures[f"volume_acceptance_L{L}"] for L in (8, 12, 16, 24)]
    assert volume == sorted(volume, reverse=True), volume
    # The heatbath is frozen compared with every ladder (τ_int of Q in steps).
    for ladder in ("plain_rex", "trex", "ptbc", "drrex"):
        assert figures[f"tau_Q_{ladder}"] < figures["tau_Q_heatbath"] / 5, ladder
        assert figures[f"cost_Q_{ladder}"] > 0
        assert not figures[f"tau_Q_lower_bound_{ladder}"], ladder
    # T-REX spans the same β range with fewer rungs than the plain ladder, DR-REX the same
    # range of c with fewer than PTBC, and each map beats plain swaps at its spacing.
    assert figures["rungs_trex"] < figures["rungs_plain_rex"]
    assert figures["rungs_drrex"] < figures["rungs_ptbc"]
    for i in range(figures["rungs_drrex"] - 1):
        assert figures[f"acceptance_drrex_pair{i}"] > figures[f"acceptance_drrex_plain_pair{i}"], i
    # HMC is frozen at β = 6 like the heatbath; flow-MH with the shipped flow is not.
    assert figures["tau_Q_flowmh"] < figures["tau_Q_heatbath"] / 5
    assert figures["tau_Q_hmc"] > 5 * figures["tau_Q_flowmh"]
