"""The φ⁴ benchmark runs, checks its reference against our flow, and prints name=value lines."""

import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_phi4.py"


def _run(*args: str) -> tuple[int, dict[str, str], str]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    figures = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return proc.returncode, figures, proc.stderr


def test_quick_step_timing_prints_ratios():
    # Part (a) only: it first checks that the plain reference and our flow compute the same
    # x, logq and action from the same weights (it raises otherwise), then times both.
    rc, figures, err = _run("--quick", "--only", "a", "--device", "cpu", "--threads", "1")
    assert rc == 0, err
    assert figures["device"] == "cpu" and figures["quick"] == "True"
    for batch in (64, 1024):
        ratio = float(figures[f"step_time_ratio_b{batch}"])
        ours, ref = (
            float(figures[f"step_ms_ours_b{batch}"]),
            float(figures[f"step_ms_ref_b{batch}"]),
        )
        assert math.isfinite(ratio) and ratio > 0 and ours > 0 and ref > 0


def test_bad_arguments_are_one_line_errors():
    rc, _, err = _run("--only", "x")
    assert rc == 2 and "parts must be among a, b, c" in err
