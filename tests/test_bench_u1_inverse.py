"""The U(1) reverse-pass benchmark runs, checks that both root finders invert the flow
equally well, and prints ratios."""

import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_u1_inverse.py"


def test_quick_run_prints_positive_finite_ratios():
    # --quick: L = 8, 8 layers, 2 rounds. Before timing the script raises unless Newton's
    # round trip is as good as bisection's. No timing assertions: CPU machines are noisy.
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    figures = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    case = "L8_layers8_B32"
    for name in (f"reverse_ratio_{case}", f"reverse_ms_bisect_{case}", f"reverse_ms_newton_{case}"):
        value = float(figures[name])
        assert math.isfinite(value) and value > 0, (name, value)
    errors = dict(part.split(":") for part in figures[f"round_trip_error_{case}"].split(","))
    assert float(errors["newton"]) < 1e-6 and float(errors["bisect"]) < 1e-6, errors
    assert "reverse_ratio_L16_layers8_B64" not in figures  # --quick: one case
