"""The fermion benchmark runs, checks its dense reference against ours, and prints ratios."""

import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fermions.py"


def _run(*args: str) -> tuple[int, dict[str, str], str]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    figures = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return proc.returncode, figures, proc.stderr


def test_quick_run_prints_positive_finite_ratios():
    # --quick: L = 8 only. Before timing, the script raises unless the dense reference
    # agrees with ours on D, D ψ, the solve and a short leapfrog (the *_rel_diff_L8 lines).
    # No timing assertions: CPU machines are noisy.
    rc, figures, err = _run("--quick", "--device", "cpu", "--threads", "1")
    assert rc == 0, err
    assert figures["device"] == "cpu" and figures["quick"] == "True"
    assert figures["sizes"] == "8" and int(figures["batch_L8"]) >= 1
    for op in ("apply", "solve", "trajectory"):
        for name in (f"{op}_ratio_L8", f"{op}_ms_ours_L8", f"{op}_ms_dense_L8"):
            value = float(figures[name])
            assert math.isfinite(value) and value > 0, (name, value)
    assert float(figures["solve_rel_diff_L8"]) <= 1e-6
    assert float(figures["leapfrog_rel_diff_L8"]) <= 1e-6
    # CG on D†D for 2V = 128 unknowns: at least a few iterations, at most the default cap.
    assert 1 <= float(figures["cg_iterations_L8"]) <= int(figures["cg_iterations_max_L8"]) <= 256
    assert float(figures["trajectory_cg_iterations_L8"]) > float(figures["cg_iterations_L8"])
    assert 0 <= float(figures["trajectory_accept_L8"]) <= 1
    # (d) even/odd against plain pseudofermions: positive times and ratio; the Schur
    # complement's system is better conditioned, so its CG needs fewer iterations.
    for name in ("even_odd_ratio_L8", "even_odd_trajectory_ms_plain_L8"):
        assert math.isfinite(float(figures[name])) and float(figures[name]) > 0, name
    plain = float(figures["even_odd_cg_iterations_plain_L8"])
    assert 0 < float(figures["even_odd_cg_iterations_even_odd_L8"]) < plain


def test_bad_sizes_are_one_line_errors():
    rc, _, err = _run("--sizes", "8,x")
    assert rc == 2 and "sizes must be integers >= 2" in err
