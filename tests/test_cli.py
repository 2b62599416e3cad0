"""The train command: trains, saves a loadable checkpoint, and refuses bad input in one line."""

import subprocess
import sys

from lqft_lab.__main__ import main
from lqft_lab.actions import Phi4Action
from lqft_lab.io import load_checkpoint


def test_train_command_writes_a_matching_checkpoint(tmp_path, capsys):
    out = tmp_path / "flow.safetensors"
    rc = main(
        [
            "train",
            "--L",
            "4",
            "--layers",
            "2",
            "--steps",
            "20",
            "--m2",
            "1.0",
            "--lam",
            "0.0",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    model, meta = load_checkpoint(out, action=Phi4Action(1.0, 0.0))
    assert meta["steps"] == 20 and meta["metrics"]["ess_samples"] == 8192
    assert 0 < meta["metrics"]["ess"] <= 1
    assert "saved" in capsys.readouterr().out


def test_train_command_bad_input_is_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "lqft_lab", "train", "--L", "7", "--out", "x.safetensors"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: L must be even for a checkerboard mask, got 7"
