"""The Makefile's gpu target: it refuses a machine without CUDA before running anything,
and GPU_ONLY narrows the notebook run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_make_gpu_refuses_without_cuda_before_running_a_notebook(tmp_path):
    out = tmp_path / "full"
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this holds on a GPU machine too.
    done = _make(
        "gpu", f"GPU_PY={sys.executable}", f"GPU_OUT={out}", env={"CUDA_VISIBLE_DEVICES": ""}
    )
    assert done.returncode != 0
    assert "cannot use CUDA; install a CUDA build of torch" in done.stderr, done.stderr[-2000:]
    assert not out.exists()  # refused before the notebooks ran


def test_gpu_only_selects_notebooks():
    everything = _make("-n", "gpu", "GPU_PY=python3")
    some = _make("-n", "gpu", "GPU_PY=python3", "GPU_ONLY=02 03")
    assert everything.returncode == 0 and some.returncode == 0
    assert "--only" not in everything.stdout
    assert "--only 02 03" in some.stdout
