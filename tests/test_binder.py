"""Binder builds the image that binder/ describes: checked with repo2docker itself.

mybinder.org builds a repository with repo2docker, which picks a build pack from the files
it finds (a ``binder/`` folder, when present, is the only place it looks). With
``--no-build --debug`` repo2docker prints the Dockerfile it would build, and needs no
Docker engine for that. These tests read that Dockerfile: the conda build pack must create
the environment from binder/environment.yml, with the Python version that file pins, and
then run binder/postBuild (which installs the package). A control run on a folder without
the environment file shows the same assertions fail when binder/ is not used.

repo2docker is a test tool (``make venv`` installs it), not a dependency of the lab.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_UPDATE = re.compile(r'env update -p \$\{NB_PYTHON_PREFIX\} --file "binder/environment\.yml"')


def render(repo: Path) -> tuple[str, str]:
    """``(Dockerfile, log)`` that repo2docker would build for the folder ``repo``."""
    if importlib.util.find_spec("repo2docker") is None:
        pytest.fail("repo2docker is missing: `make venv` installs it (jupyter-repo2docker)")
    result = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--debug", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def pinned_python() -> str:
    env = yaml.safe_load((ROOT / "binder/environment.yml").read_text())
    pins = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert len(pins) == 1, f"binder/environment.yml must pin python once, has {pins}"
    return pins[0].split("=", 1)[1]


def test_repo2docker_uses_the_binder_environment_and_runs_postbuild():
    dockerfile, log = render(ROOT)
    assert f"Building conda environment for python={pinned_python()}" in log, log
    assert ENV_UPDATE.search(dockerfile), "the image does not install binder/environment.yml"
    assert "RUN ./binder/postBuild" in dockerfile
    # The environment is installed before postBuild installs the package into it.
    assert ENV_UPDATE.search(dockerfile).start() < dockerfile.index("RUN ./binder/postBuild")


def test_the_checks_fail_without_the_binder_environment(tmp_path):
    # Control: binder/ with postBuild alone. repo2docker then builds a default environment,
    # and the assertion on the environment file above would fail.
    (tmp_path / "binder").mkdir()
    shutil.copy2(ROOT / "binder/postBuild", tmp_path / "binder/postBuild")
    dockerfile, log = render(tmp_path)
    assert not ENV_UPDATE.search(dockerfile)
    assert f"Building conda environment for python={pinned_python()}" not in log
