"""Every public entry point is covered by a boundary test.

The public API is what the packages list in ``__all__`` (a module listed there, such as
``lqft_lab.exact.u1``, contributes its own ``__all__``). A callable is covered when some
``test_*.py`` of this folder names it in its ``COVERED`` set, under any of the paths it is
exported from; constants (numbers, strings, tuples, dicts, paths) are data, not entry points.
The few callables that take no user input worth drawing are listed in ``EXEMPT`` with the
reason. A new public function without a boundary test fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

PACKAGES = [
    "lqft_lab.checks",
    "lqft_lab.linalg",
    "lqft_lab.lattice",
    "lqft_lab.io",
    "lqft_lab.actions",
    "lqft_lab.analysis",
    "lqft_lab.exact",
    "lqft_lab.flows",
    "lqft_lab.flows.u1",
    "lqft_lab.groups",
    "lqft_lab.observables",
    "lqft_lab.samplers",
    "lqft_lab.train",
    "lqft_lab.studies.u1",
    "lqft_lab.studies.sun",
    "lqft_lab.studies.phi4_scaling",
    "lqft_lab.studies.schwinger",
    "lqft_lab.studies.replica_exchange",
    "lqft_lab.studies.correlated",
    "lqft_lab.widgets",
    "lqft_lab.notebooks",
    "lqft_lab.report",
    "lqft_lab.__main__",  # the command line, `python -m lqft_lab`
]

#: Callables without a boundary test, and why none is needed.
EXEMPT: dict[str, str] = {
    "lqft_lab.notebooks.NotebookFailed": "an exception type, raised by run_notebooks",
}


def public_callables() -> dict[int, tuple[str, object]]:
    """``id(obj) -> (first dotted path, obj)`` for every public callable."""
    found: dict[int, tuple[str, object]] = {}
    seen_modules: set[str] = set()

    def visit(module: ModuleType) -> None:
        if module.__name__ in seen_modules:
            return
        seen_modules.add(module.__name__)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if isinstance(obj, ModuleType):
                visit(obj)
            elif callable(obj) and not isinstance(obj, type(Path())):
                found.setdefault(id(obj), (f"{module.__name__}.{name}", obj))

    for package in PACKAGES:
        visit(importlib.import_module(package))
    return found


def resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def covered_paths() -> dict[str, str]:
    """``dotted path -> test module`` from every boundary test module's ``COVERED``."""
    import tests.boundary as folder

    paths: dict[str, str] = {}
    for info in pkgutil.iter_modules(folder.__path__):
        if info.name.startswith("test_") and info.name != "test_coverage":
            module = importlib.import_module(f"tests.boundary.{info.name}")
            for path in getattr(module, "COVERED", ()):
                paths[path] = info.name
    return paths


def test_every_public_callable_has_a_boundary_test():
    covered = {id(resolve(p)) for p in covered_paths()}
    exempt = {id(resolve(p)) for p in EXEMPT}
    missing = sorted(
        path
        for key, (path, _) in public_callables().items()
        if key not in covered and key not in exempt
    )
    assert not missing, f"{len(missing)} public callables without a boundary test:\n" + "\n".join(
        missing
    )


def test_covered_names_are_public():
    """A ``COVERED`` entry must resolve to a public callable (no stale or misspelt names)."""
    public = public_callables()
    stale = [p for p, m in covered_paths().items() if id(resolve(p)) not in public]
    assert not stale, f"not public callables: {stale}"


def test_the_cli_is_covered():
    """The command line is an entry point too: some module covers ``python -m lqft_lab``."""
    assert "lqft_lab.__main__.main" in covered_paths(), "no boundary test of the CLI"


def test_exempt_callables_are_few_and_explained():
    assert len(EXEMPT) <= 10
    assert all(reason.strip() for reason in EXEMPT.values())
    assert all(inspect.isclass(resolve(p)) or callable(resolve(p)) for p in EXEMPT)
