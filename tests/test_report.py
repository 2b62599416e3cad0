"""The GPU report: targets are checked honestly and the Markdown names every figure."""

from __future__ import annotations

import json

import pytest

from lqft_lab.__main__ import main
from lqft_lab.report import TARGETS, Target, check_targets, render_report, write_report

METRICS = {
    "01_phi4_real_nvp": {
        "ess": 0.58,
        "acceptance": 0.41,  # misses its target
        "chi2_pull": -1.2,
        "chi2_pull_local": 0.6,
        "E_pull": 1.4,
        "free_chi2_pull": -0.4,
        "free_phi2_pull": None,  # a NaN figure is stored as null: it misses
        "n_proposals": 256000,
        "ess_samples": 65536,
        "chi2_flow": 0.749,
        "tau": [0.5, 1.5],
    },
    "_meta": {
        "01_phi4_real_nvp": {
            "wall_s": 150.25,
            "mode": "full",
            "device": "cuda",
            "status": "ok",
            "peak_rss_mb": 901.3,
            "peak_gpu_mb": 412.0,
            "gpu": "NVIDIA H100 80GB HBM3",
        },
        "02_u1_flows": {"wall_s": 3.0, "mode": "full", "device": "cuda", "status": "failed"},
    },
}


def test_notebook_01_targets_are_the_issues():
    targets = {(t.figure, t.kind, t.bound) for t in TARGETS["01_phi4_real_nvp"]}
    assert {
        ("ess", ">=", 0.5),
        ("acceptance", ">=", 0.5),
        ("chi2_pull", "|x|<", 2),
        ("n_proposals", ">=", 10_000),
        ("ess_samples", ">=", 4096),
    } <= targets


def test_notebook_02_targets_are_the_issues():
    targets = {(t.figure, t.kind, t.bound) for t in TARGETS["02_u1_equivariant_flows"]}
    assert {
        ("acceptance", ">=", 0.5),
        ("tau_Q_hmc_over_flow_b6", ">=", 20),
        ("plaq_pull_flow_b6", "|x|<", 3),
        ("chi_t_pull_flow_b6", "|x|<", 3),
    } <= targets


def test_notebook_03_targets_are_the_issues():
    targets = {(t.figure, t.kind, t.bound) for t in TARGETS["03_su3_spectral_flows"]}
    assert {
        ("ess_single_su3_a", ">=", 0.9),
        ("ess_single_su3_b", ">=", 0.9),
        ("ess_single_su3_c", ">=", 0.9),
        ("acceptance_lattice_su2", ">=", 0.3),
        ("acceptance_lattice_su3", ">=", 0.3),
        ("plaq_pull_flow_su3", "|x|<", 3),
    } <= targets


@pytest.mark.parametrize(
    "target, value, ok",
    [
        (Target("x", ">=", 0.5), 0.5, True),
        (Target("x", ">=", 0.5), 0.49, False),
        (Target("x", "|x|<", 2), -1.99, True),
        (Target("x", "|x|<", 2), -2.0, False),
        (Target("x", ">=", 0.5), None, False),
        (Target("x", ">=", 0.5), float("nan"), False),
        (Target("x", ">=", 0.5), True, False),
        (Target("x", ">=", 0.5), "0.9", False),
    ],
)
def test_target_met_by(target, value, ok):
    assert target.met_by(value) is ok


def test_bad_target_kind_raises():
    with pytest.raises(ValueError, match="target kind"):
        Target("x", "<=", 1)


def test_check_targets_marks_misses():
    misses = {c.target.figure for c in check_targets(METRICS) if not c.ok}
    assert misses == {"acceptance", "free_phi2_pull"}
    # A notebook with targets that did not run at all is not reported as missing them.
    assert {c.notebook for c in check_targets({"_meta": {}})} == set()


def test_render_report_lists_run_and_figures():
    text = render_report(METRICS, title="GPU run")
    assert text.startswith("# GPU run\n")
    assert "| 01_phi4_real_nvp | ok | 150 s | 901 MiB | 412 MiB |" in text
    assert "| 02_u1_flows | failed | 3 s | not recorded | not recorded |" in text
    assert "| acceptance | 0.41 | ≥ 0.5 | ✗ |" in text
    assert "| chi2_pull | -1.2 | within ±2 | ✓ |" in text  # no bare | inside a cell
    assert "| chi2_flow | 0.749 | | | |" in text  # untargeted figures are listed too
    assert "Targets met: 7 of 9." in text


def test_write_report_and_cli(tmp_path):
    metrics_path = tmp_path / "metrics.json"
    metrics_path.write_text(json.dumps(METRICS))
    path = write_report(metrics_path, tmp_path / "reports", date="2026-01-02")
    assert path == tmp_path / "reports" / "2026-01-02-h100-80gb-hbm3.md"
    assert "# GPU run, 2026-01-02, NVIDIA H100 80GB HBM3" in path.read_text()
    copy = tmp_path / "reports" / "2026-01-02-h100-80gb-hbm3-metrics.json"
    assert json.loads(copy.read_text()) == METRICS

    out = tmp_path / "cli"
    args = ["report", "--metrics", str(metrics_path), "--out", str(out), "--date", "2026-01-03"]
    assert main([*args, "--gpu", "A100"]) == 0
    assert (out / "2026-01-03-a100.md").exists()
    assert main(["report", "--metrics", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
