"""pyproject.toml, environment.yml and binder/ declare the same dependencies, and enough of them.

Every third-party module that the package or a notebook imports must be a declared runtime
dependency in all three, and the three must list the same packages: a package added to one
and forgotten in another fails here, with the file and the package named. tests/ is not
scanned: what only the tests import (pytest, pyerrors) is the business of the dev extra.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = ("environment.yml", "binder/environment.yml")

# Import names that differ from their distribution's name on PyPI; every other module is
# looked up under its own name (compared PEP 503-normalised: case, '-', '_' and '.' alike).
IMPORT_TO_PYPI = {
    "yaml": "pyyaml",
    "IPython": "ipython",
    "sklearn": "scikit-learn",
    "PIL": "pillow",
}
# PyPI names that conda-forge spells differently.
PYPI_TO_CONDA = {"torch": "pytorch"}
# Conda entries that are the environment itself rather than a dependency of the code.
CONDA_ONLY = {"python", "pip"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    """``"torch>=2.2"`` → ``"torch"``; ``"pytorch=*=cpu*"`` → ``"pytorch"``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, f"cannot read a package name from {spec!r}"
    return normalise(match.group(1))


def to_conda(pypi_name: str) -> str:
    return normalise(PYPI_TO_CONDA.get(pypi_name, pypi_name))


# --------------------------------------------------------------------------- what is imported


def _top_level_imports(source: str) -> set[str]:
    """Absolute imports' top-level module names (relative imports are the package's own)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _notebook_code(path: Path) -> str:
    """The notebook's code cells as plain Python (IPython magics and `!` lines translated)."""
    cells = json.loads(path.read_text())["cells"]
    transform = TransformerManager().transform_cell
    return "\n".join(transform("".join(c["source"])) for c in cells if c["cell_type"] == "code")


def third_party_imports() -> dict[str, set[str]]:
    """``{pypi name: {files that import it}}`` for lqft_lab/ and notebooks/."""
    sources = {p: p.read_text() for p in sorted((ROOT / "lqft_lab").rglob("*.py"))}
    sources |= {p: _notebook_code(p) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    found: dict[str, set[str]] = {}
    for path, source in sources.items():
        for module in _top_level_imports(source):
            if module in sys.stdlib_module_names or module == "lqft_lab":
                continue
            name = normalise(IMPORT_TO_PYPI.get(module, module))
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


# --------------------------------------------------------------------------- what is declared


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def runtime_dependencies() -> set[str]:
    """``[project].dependencies`` of pyproject.toml, normalised PyPI names."""
    return {requirement_name(spec) for spec in pyproject()["dependencies"]}


def all_pyproject_dependencies() -> set[str]:
    """Runtime dependencies and every extra's."""
    extras = pyproject().get("optional-dependencies", {}).values()
    return runtime_dependencies() | {requirement_name(s) for extra in extras for s in extra}


def conda_packages(relpath: str) -> set[str]:
    """The conda packages an environment file lists (its `pip:` section and python/pip aside)."""
    env = yaml.safe_load((ROOT / relpath).read_text())
    names = {requirement_name(dep) for dep in env["dependencies"] if isinstance(dep, str)}
    return names - CONDA_ONLY


# --------------------------------------------------------------------------- the tests


def test_the_scan_finds_the_known_imports():
    # Guards the scanner itself: a scan that found nothing would pass every test below.
    found = third_party_imports()
    assert {"torch", "numpy", "papermill"} <= set(found)
    assert any(f.startswith("notebooks/") for f in found["torch"])
    assert "lqft-lab" not in found and "json" not in found


def test_every_import_is_a_runtime_dependency_in_pyproject():
    declared = runtime_dependencies()
    missing = {
        name: sorted(files) for name, files in third_party_imports().items() if name not in declared
    }
    assert not missing, "\n".join(
        f"pyproject.toml [project].dependencies lacks {name!r}, imported by {', '.join(files)}"
        for name, files in sorted(missing.items())
    )


@pytest.mark.parametrize("env_file", ENVIRONMENTS)
def test_every_import_and_runtime_dependency_is_in_the_conda_environment(env_file):
    listed = conda_packages(env_file)
    needed = {name: sorted(files) for name, files in third_party_imports().items()}
    for name in runtime_dependencies():
        needed.setdefault(name, ["pyproject.toml [project].dependencies"])
    missing = {name: why for name, why in needed.items() if to_conda(name) not in listed}
    assert not missing, "\n".join(
        f"{env_file} lacks {to_conda(name)!r} (needed by {', '.join(why)})"
        for name, why in sorted(missing.items())
    )


def test_conda_environments_list_the_same_packages():
    first, second = ENVIRONMENTS
    a, b = conda_packages(first), conda_packages(second)
    problems = [f"{second} lacks {name!r}, which {first} lists" for name in sorted(a - b)]
    problems += [f"{first} lacks {name!r}, which {second} lists" for name in sorted(b - a)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env_file", ENVIRONMENTS)
def test_conda_environment_and_pyproject_agree(env_file):
    # The conda environments are for users and Binder: the runtime packages, JupyterLab and
    # the dev tools, exactly what `pip install -e .[dev]` would give, no more and no less.
    listed = conda_packages(env_file)
    declared = {to_conda(name) for name in all_pyproject_dependencies()}
    problems = [
        f"{env_file} lists {name!r}, which pyproject.toml declares nowhere"
        for name in sorted(listed - declared)
    ]
    problems += [
        f"{env_file} lacks {name!r}, which pyproject.toml declares"
        for name in sorted(declared - listed)
    ]
    assert not problems, "\n".join(problems)


def test_binder_has_cpu_only_torch_and_installs_the_package():
    # repo2docker reads binder/environment.yml and then runs binder/postBuild (executable).
    env = yaml.safe_load((ROOT / "binder/environment.yml").read_text())
    torch_specs = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("pytorch")]
    assert torch_specs == ["pytorch=*=cpu*"], torch_specs
    post_build = ROOT / "binder/postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install" in post_build.read_text() and " -e ." in post_build.read_text()
