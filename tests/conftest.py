"""Shared test set-up: one papermill run of the notebooks per session, and markers.

Every notebook executes once per test session (:func:`notebook_metrics`); the tests of its
figures, of its tagged outputs and the browser tests all read that run's executed copies.
Headless plotting (``MPLBACKEND=Agg``, ``LQFT_LAB_HEADLESS=1``) is set for every pytest run
by pyproject.toml (pytest-env), before collection, so kernels inherit it as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_OUT = ROOT / "build" / "notebooks-test"


# `make nbval` (not part of `make test`) lets nbval execute the notebooks a second time.
# nbval reads a cell's outputs after the kernel's reply and gives up when no message comes
# for `output_timeout` seconds (5, fixed in nbval 0.11). Reading stops at the kernel's idle
# message, so a longer wait costs nothing when all is well; 5 s once failed notebook 03's
# sampler-table cell ("Timeout of 5 seconds exceeded waiting for output") in a run whose
# other cells passed, and which passed when rerun.
NBVAL_OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(items):
    """Mark nbval's notebook cells `notebooks`, so `-m "not notebooks"` skips all of them."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
            if hasattr(item, "output_timeout"):
                item.output_timeout = max(item.output_timeout, NBVAL_OUTPUT_TIMEOUT_S)


@pytest.fixture(scope="session")
def notebook_metrics() -> dict:
    """Execute every notebook once (fast mode, CPU) and return its ``metrics.json`` contents.

    A notebook that fails does not hide the others: its entry in ``_meta`` has
    ``status == "failed"`` and the error; the executed copies are in ``build/notebooks-test/``.
    """
    from lqft_lab.notebooks import NotebookFailed, run_notebooks

    try:
        return run_notebooks(
            mode="fast", device="cpu", out=NOTEBOOK_OUT, notebooks_dir=NOTEBOOKS, progress=False
        )
    except NotebookFailed as err:
        return err.metrics


@pytest.fixture
def one_thread():
    """Run a test with one intra-op thread, restoring the setting afterwards.

    The tensors of the sampler tests are tiny; on a busy 2-core machine OpenMP wake-ups of a
    second thread cost milliseconds per operation.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class HostQueries(TorchDispatchMode):
    """Records the ops that make a GPU wait for the host: scalar reads (``.item()``, ``bool``),
    ``nonzero`` and the like, and indexing with a mask (which calls ``nonzero``)."""

    SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "is_nonzero", "unique"}
    INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        mask = name in self.INDEXING and any(
            i is not None and i.dtype in (torch.bool, torch.uint8) for i in args[1]
        )
        if name in self.SYNCING or mask:
            self.found.append(name)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def host_queries() -> type[HostQueries]:
    """:class:`HostQueries`, a recorder of host-syncing ops: ``with host_queries() as q: ...``."""
    return HostQueries


@pytest.fixture
def gpu_plan_step(monkeypatch, host_queries):
    """``gpu_plan_step(module, sampler, state, seed) -> new state``: one heatbath step with the
    draw plan a GPU gets (16 candidates, no further rounds), checked to call no op that would
    make a GPU wait for the host, after checking that the CPU's plan does call one (so the
    recorder is seen to work). ``module`` holds the sampler's ``_draw_plan``.
    """

    def step(module, sampler, state, seed):
        plan = module._draw_plan
        with host_queries() as queries:  # the CPU's plan asks: the recorder sees it
            sampler.step(state, torch.Generator().manual_seed(seed))
        assert "_local_scalar_dense" in queries.found
        monkeypatch.setattr(module, "_draw_plan", lambda d, n: plan(torch.device("cuda"), n))
        with host_queries() as queries:
            new, _ = sampler.step(state, torch.Generator().manual_seed(seed))
        assert queries.found == []
        return new

    return step
