"""Run the numbered notebooks headless and collect the figures they record.

The contract between a notebook and its runner:

- A notebook is ``notebooks/NN_topic.ipynb`` (or ``NNx_topic.ipynb``, a letter after the
  number for a companion of notebook ``NN``, e.g. ``01b``). Its first code cell is tagged
  ``parameters`` and defines at least ``mode = "fast"`` and ``device = "auto"``; the runner
  overrides them (papermill injects a cell after it), plus any ``extra_parameters``.
- A notebook reports its key figures with :func:`record` (``record("ess", ess)``). In an
  interactive session that only keeps them in this process (:func:`recorded`); under the
  runner, ``LQFT_LAB_RECORD`` names a JSON file and every call merges ``{name: value}``
  into it, so figures recorded before a failure survive it.
- :func:`run_notebooks` executes each notebook in a fresh kernel whose working directory is
  the notebooks folder (relative paths such as ``../data`` work), with
  ``LQFT_LAB_HEADLESS=1`` (dashboards draw one static figure instead of live widgets) and
  matplotlib's inline backend, so the executed copies keep their figures. It writes the
  executed copies and ``metrics.json`` into ``out``::

      {"01_phi4_real_nvp": {"ess": 0.43, ...},
       "_meta": {"01_phi4_real_nvp": {"wall_s": 81.2, "mode": "fast", "device": "cpu",
                                      "status": "ok", "peak_rss_mb": 612.4}}}

  A failed notebook keeps the figures it recorded before failing (a full-mode run that
  fails its last check still measured everything) and appears in ``_meta`` with
  ``"status": "failed"`` and its error; readers of a figure check the status first. The
  run raises :class:`NotebookFailed` after all selected notebooks have been tried.
- Peak memory is measured, not assumed. The runner executes a copy of each notebook with one
  more cell at the end (tagged ``lqft-lab-peak-memory``; the file in ``notebooks/`` is never
  touched, and the cell is removed from the executed copy again). That cell, run in the
  kernel itself, reads the kernel's high-water mark of resident memory (``VmHWM`` in
  ``/proc/self/status`` on Linux, ``getrusage``'s ``ru_maxrss`` elsewhere), which the
  operating system keeps for the whole life of the process, so no peak between two polls
  can be missed (as it could be by sampling the kernel from outside). It is stored as
  ``peak_rss_mb`` (MiB) in the notebook's ``_meta`` entry; when the kernel used CUDA,
  ``torch.cuda.max_memory_allocated()`` becomes ``peak_gpu_mb`` and the device's name
  ``gpu``. A notebook that failed never reaches that cell and has no peak recorded.

The kernel is always the interpreter running this module (``sys.executable``), whatever
kernelspecs named ``python3`` exist elsewhere on the machine: the runner hands nbclient a
kernel manager whose kernelspec is built in memory from ``ipykernel``'s own (the same thing
nbval's ``--nbval-current-env`` does), so ``make notebooks`` runs the notebooks against the
``.venv`` it just installed.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "MODES",
    "DEVICES",
    "NotebookFailed",
    "find_notebooks",
    "record",
    "recorded",
    "run_notebooks",
]

MODES = ("fast", "full")
DEVICES = ("auto", "cpu", "cuda")
#: The longest per-cell ``timeout`` accepted, in seconds (a week): beyond it, event loops'
#: millisecond timers overflow, and no cell of these notebooks needs it.
MAX_TIMEOUT = 7 * 24 * 3600

RECORD_ENV = "LQFT_LAB_RECORD"
HEADLESS_ENV = "LQFT_LAB_HEADLESS"
_INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
_MAX_LIST = 1000  # records are figures, not data sets
PEAK_TAG = "lqft-lab-peak-memory"

# The last cell of every executed notebook (see the module docstring). It runs in the
# notebook's namespace, so it defines nothing there that outlives it. On Linux it reads
# VmHWM, the high-water mark of this process's own address space: getrusage's ru_maxrss
# would not do there, as Linux carries it over fork and exec, so a kernel started from a
# large process (a pytest run that imported torch) would report that process's size.
# Elsewhere ru_maxrss is the best there is (bytes on macOS); Windows records no peak.
_PEAK_CELL = """\
def _lqft_lab_peak_memory(path):
    import json, sys
    peak = {}
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        peak["peak_rss_mb"] = round(kib / 2**10, 1)
    except (OSError, StopIteration):
        try:
            import resource
        except ImportError:
            pass
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak["peak_rss_mb"] = round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        peak["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        peak["gpu"] = torch.cuda.get_device_name()
    with open(path, "w") as f:
        json.dump(peak, f)
_lqft_lab_peak_memory(PEAK_FILE)
del _lqft_lab_peak_memory
"""

_recorded: dict[str, Any] = {}


# --------------------------------------------------------------------------- record()


def _to_json(value: Any, name: str) -> Any:
    """Turn a figure into plain JSON: scalars, strings, bools, None and (nested) small lists."""
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and numpy scalars
        value = value.tolist()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # JSON has no NaN/inf; a NaN figure is still worth recording (the check reads null).
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_to_json(v, name) for v in value]
    raise TypeError(
        f"record({name!r}, value): value must be a number, string, bool, None or a small "
        f"list of these, got {type(value).__name__}"
    )


def _size(plain: Any) -> int:
    """Number of scalars in a converted figure (nested lists count all their entries)."""
    return sum(map(_size, plain)) if isinstance(plain, list) else 1


def _merge_into(path: Path, entries: Mapping[str, Any]) -> None:
    """Merge ``entries`` into the JSON object at ``path``, replacing the file atomically."""
    data = {}
    if path.exists() and path.stat().st_size > 0:
        data = json.loads(path.read_text())
    data.update(entries)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(name: str, value: Any) -> Any:
    """Record a key figure of the running notebook.

    The figure is kept in this process (see :func:`recorded`) and, when the environment
    variable ``LQFT_LAB_RECORD`` names a JSON file (the runner sets it), merged into it.

    Args:
        name: non-empty name of the figure, e.g. ``"ess"``.
        value: a number (torch and numpy scalars become Python numbers; NaN and ±inf are
            stored as ``null``), a string, a bool, ``None``, or a small list of these
            (a small tensor or array is turned into one).

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: for an empty name or a list of more than 1000 entries in all.
        TypeError: for a value that is not one of the above.

    Example:
        >>> record("acceptance", 0.61)
        0.61
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"record() needs a non-empty string name, got name={name!r}")
    plain = _to_json(value, name)
    if (n := _size(plain)) > _MAX_LIST:
        raise ValueError(
            f"record({name!r}, value): value holds {n} numbers; records are figures, keep them "
            f"to at most {_MAX_LIST} (save data sets with lqft_lab.io instead)"
        )
    _recorded[name] = plain
    target = os.environ.get(RECORD_ENV)
    if target:
        _merge_into(Path(target), {name: plain})
    return value


def recorded() -> dict[str, Any]:
    """Return a copy of the figures recorded so far in this process."""
    return dict(_recorded)


# --------------------------------------------------------------------------- the runner


class NotebookFailed(RuntimeError):
    """One or more notebooks raised; ``failures`` maps each one's name to its error.

    ``metrics`` holds what was written to ``metrics.json``: the figures of the notebooks
    that passed and ``_meta`` for all of them.
    """

    def __init__(self, failures: dict[str, str], metrics: dict, metrics_path: Path):
        self.failures = failures
        self.metrics = metrics
        self.metrics_path = metrics_path
        lines = [f"{len(failures)} notebook(s) failed:"]
        lines += [f"  {name}: {msg}" for name, msg in failures.items()]
        lines.append(f"figures recorded (failed notebooks: up to the failure): {metrics_path}")
        super().__init__("\n".join(lines))


_NUMBERED = re.compile(r"[0-9]{2}[a-z]?_.+\.ipynb")


def _path(name: str, value) -> Path:
    """A ``str`` or ``os.PathLike`` argument as a ``Path`` (ValueError otherwise: usage)."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip()):
        text = os.fspath(value)
        if not isinstance(text, str) or "\0" in text:
            raise ValueError(f"{name} must be a text path without NUL characters, got {value!r}")
        return Path(text)
    raise ValueError(f"{name} must be a non-empty path (str or os.PathLike), got {value!r}")


def find_notebooks(notebooks_dir: str | os.PathLike = "notebooks") -> list[Path]:
    """Return the numbered notebooks (``NN_*.ipynb``, ``NNx_*.ipynb``) in a folder, sorted.

    Raises:
        ValueError: if ``notebooks_dir`` is not a path, or names a file.
        FileNotFoundError: if the folder does not exist.
    """
    folder = _path("notebooks_dir", notebooks_dir)
    if not folder.exists():
        raise FileNotFoundError(f"notebook folder {str(folder)!r} does not exist (notebooks_dir)")
    if not folder.is_dir():
        raise ValueError(f"notebooks_dir {str(folder)!r} is a file, not a folder")
    return sorted(p for p in folder.glob("*.ipynb") if _NUMBERED.fullmatch(p.name))


def _select(notebooks: list[Path], only: Iterable[str] | None) -> list[Path]:
    """Keep the notebooks named in ``only`` by number (``"01"``) or stem (``"01_phi4..."``)."""
    if only is None:
        return notebooks
    available = ", ".join(nb.stem for nb in notebooks) or "none"
    accepted = f"notebook numbers such as '01' or names; available: {available}"
    if isinstance(only, str):
        only = [only]
    if not isinstance(only, Iterable) or isinstance(only, (bytes, Mapping)):
        raise ValueError(
            f"only must be a list of strings naming notebooks ({accepted}), got {only!r}"
        )
    only = list(only)
    strange = [key for key in only if not isinstance(key, str)]
    if strange:
        raise ValueError(f"only must name notebooks by strings ({accepted}), got {strange!r}")
    if not only:
        raise ValueError(f"only names no notebook; pass None to run all ({accepted})")
    chosen, unknown = set(), []
    for key in only:
        key = key.removesuffix(".ipynb")
        hits = [nb for nb in notebooks if key in (nb.stem, nb.stem.split("_", 1)[0])]
        if not hits:
            unknown.append(key)
        chosen.update(hits)
    if unknown:
        raise ValueError(
            f"unknown notebook(s) {', '.join(unknown)} in only; available: {available}"
        )
    return [nb for nb in notebooks if nb in chosen]


def _kernel_manager_class(env: Mapping[str, str]) -> type:
    """A kernel manager that starts ``sys.executable``'s ipykernel with ``env`` added."""
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    spec = get_kernel_dict()
    # The kernel's own log (e.g. ipykernel 7's notice about unencrypted local TCP) is not part
    # of the notebook; keep errors only so a headless run prints just its progress.
    spec = KernelSpec(
        **{**spec, "argv": [*spec["argv"], "--IPKernelApp.log_level=ERROR"], "env": dict(env)}
    )

    class ThisInterpreterKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:
            return spec

    return ThisInterpreterKernelManager


def _describe(err: Exception) -> str:
    """One line for a notebook's failure: the exception the cell raised, or the runner's."""
    ename = getattr(err, "ename", None)  # papermill.PapermillExecutionError
    if ename:
        where = f" in cell [{err.exec_count}]" if getattr(err, "exec_count", None) else ""
        evalue = str(getattr(err, "evalue", "")).strip().splitlines()
        return f"{ename}{where}: {evalue[0] if evalue else ''}".rstrip(": ")
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _with_peak_cell(nb: Path, peak_file: Path, folder: Path) -> Path:
    """Write a copy of notebook ``nb`` into ``folder`` with the peak-memory cell appended."""
    import nbformat

    notebook = nbformat.read(nb, as_version=4)
    cell = nbformat.v4.new_code_cell(_PEAK_CELL.replace("PEAK_FILE", repr(str(peak_file))))
    cell.metadata["tags"] = [PEAK_TAG]
    notebook.cells.append(cell)
    copy = folder / nb.name
    nbformat.write(notebook, copy)
    return copy


def _strip_peak_cell(executed: Path, source: Path) -> None:
    """Remove the peak-memory cell from an executed copy and name the real source in it."""
    import nbformat

    if not executed.exists():
        return
    notebook = nbformat.read(executed, as_version=4)
    notebook.cells = [c for c in notebook.cells if PEAK_TAG not in c.metadata.get("tags", [])]
    if "papermill" in notebook.metadata:
        notebook.metadata.papermill["input_path"] = str(source)
    nbformat.write(notebook, executed)


def run_notebooks(
    mode: str = "fast",
    device: str = "auto",
    only: Iterable[str] | None = None,
    out: str | os.PathLike = "build/notebooks",
    notebooks_dir: str | os.PathLike = "notebooks",
    extra_parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
    timeout: float | None = None,
    jobs: int = 1,
) -> dict:
    """Execute the numbered notebooks with papermill and collect their recorded figures.

    Args:
        mode: ``"fast"`` (CPU, minutes: what the tests run) or ``"full"`` (the
            published-scale run).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; passed to each notebook's ``device``.
        only: notebooks to run, by number (``"01"``) or stem; all when ``None``.
        out: folder for the executed copies and ``metrics.json``.
        notebooks_dir: folder holding ``NN_*.ipynb``.
        extra_parameters: more values for the notebooks' ``parameters`` cells (``seed``...).
        progress: show a tqdm bar over the notebooks.
        timeout: per-cell execution limit, a positive whole number of seconds (an integral
            float such as ``60.0`` is accepted) up to a week; ``None`` for no limit.
        jobs: notebooks run at once, each in its own kernel. On a GPU machine several
            notebooks share the card well (each leaves it mostly idle); their wall times
            are then upper bounds of what each takes alone. Give each kernel a share of the
            cores, e.g. with ``OMP_NUM_THREADS``.

    Returns:
        The contents of ``out/metrics.json``: ``{stem: {name: value}, "_meta": {stem: ...}}``.

    Raises:
        ValueError: for every bad argument, naming it, before any notebook starts (and
            before ``out`` is created): an unknown ``mode`` or ``device``, ``"cuda"``
            without CUDA; ``only`` that is not strings naming notebooks, or empty; a
            ``timeout`` that is not a positive whole number of seconds (``0``, negatives,
            ``2.5``, NaN, more than a week); ``jobs`` that is not an integer ``>= 1``; an
            ``out`` that is not a path, is a file, cannot be created or written, or is
            ``notebooks_dir`` itself (the executed copies would overwrite the notebooks);
            ``extra_parameters`` that is not a mapping of identifiers to plain values, or
            that sets ``mode`` or ``device``; ``notebooks_dir`` naming a file. Wrong kinds
            are ``ValueError`` here too: these are the command line's usage errors.
        FileNotFoundError: when ``notebooks_dir`` is missing or holds no numbered notebook.
        NotebookFailed: after running all selected notebooks, if any of them raised; the
            executed copy of each failed notebook shows the traceback.
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    timeout = _check_timeout(timeout)
    parameters = _check_parameters(extra_parameters)
    out = _check_out(out, notebooks_dir)
    notebooks = find_notebooks(notebooks_dir)
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_*.ipynb) in {str(notebooks_dir)!r}")
    notebooks = _select(notebooks, only)

    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    from .lattice import resolve_device

    resolved = str(resolve_device(device))  # raises for "cuda" without CUDA, before any run
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"out {str(out)!r} cannot be created: {err.strerror or err}") from err
    metrics_path = out / "metrics.json"
    parameters = {"mode": mode, "device": device, **parameters}

    metrics: dict[str, Any] = {}
    meta: dict[str, dict] = {}
    failures: dict[str, str] = {}
    bar = tqdm(total=len(notebooks), desc="notebooks", unit="nb", disable=not progress)
    with tempfile.TemporaryDirectory(prefix="lqft_lab_records_") as tmp:
        run = functools.partial(
            _execute, out=out, tmp=Path(tmp), parameters=parameters, timeout=timeout
        )
        # Each notebook runs in its own kernel process; a thread only waits on it.
        with ThreadPoolExecutor(max_workers=min(jobs, len(notebooks))) as pool:
            futures = {pool.submit(run, nb): nb for nb in notebooks}
            for future in as_completed(futures):
                nb = futures[future]
                info, figures, failure = future.result()
                meta[nb.stem] = {**info, "mode": mode, "device": resolved}
                if figures is not None:
                    metrics[nb.stem] = figures
                if failure is not None:
                    failures[nb.stem] = failure
                bar.set_postfix_str(nb.stem)
                bar.update(1)
    bar.close()
    order = {nb.stem: i for i, nb in enumerate(notebooks)}  # the file lists them in order
    metrics = dict(sorted(metrics.items(), key=lambda item: order[item[0]]))
    metrics["_meta"] = dict(sorted(meta.items(), key=lambda item: order[item[0]]))
    metrics_path.write_text(json.dumps(metrics, indent=1, allow_nan=False) + "\n")
    if failures:
        raise NotebookFailed(failures, metrics, metrics_path)
    return metrics


def _check_timeout(timeout) -> int | None:
    """``None``, or a whole number of seconds in ``[1, MAX_TIMEOUT]`` as an ``int``.

    nbclient's timeout is an integer trait: ``2.5`` made every notebook fail with a traitlets
    error, and ``0`` or ``-1`` meant "no limit" there. Both are refused here instead.
    """
    if timeout is None:
        return None
    wanted = f"a whole number of seconds from 1 to {MAX_TIMEOUT} (or None for no limit)"
    if isinstance(timeout, bool):
        raise ValueError(f"timeout must be {wanted}, got {timeout!r}")
    if isinstance(timeout, float) and math.isfinite(timeout) and timeout.is_integer():
        timeout = int(timeout)  # the command line parses --timeout 60 as 60.0
    try:
        seconds = operator.index(timeout)
    except TypeError:
        raise ValueError(f"timeout must be {wanted}, got {timeout!r}") from None
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be {wanted}, got {seconds}")
    return seconds


_PLAIN = (type(None), bool, int, float, str)


def _plain(value) -> bool:
    """Whether ``value`` is data papermill can write into a parameters cell faithfully."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _check_parameters(extra_parameters) -> dict:
    """``extra_parameters`` as a dict of identifier -> plain value, checked."""
    if extra_parameters is None:
        return {}
    if not isinstance(extra_parameters, Mapping):
        raise ValueError(
            f"extra_parameters must be a mapping of parameter name -> value, got "
            f"{type(extra_parameters).__name__}"
        )
    for key, value in extra_parameters.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(
                f"extra_parameters keys must be Python identifiers (the notebooks' "
                f"parameter names), got {key!r}"
            )
        if key in ("mode", "device"):
            raise ValueError(
                f"extra_parameters must not set {key!r}; pass run_notebooks({key}=...) instead"
            )
        if not _plain(value):
            raise ValueError(
                f"extra_parameters[{key!r}] must be None, a bool, number, string, or a list "
                f"or dict of these, got {type(value).__name__}"
            )
    return dict(extra_parameters)


def _check_out(out, notebooks_dir) -> Path:
    """The output folder, resolved and checked for writing, without creating it."""
    out = _path("out", out).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} is a file; the executed notebooks need a folder")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"out {str(out)!r} cannot be created or written ({str(existing)!r})")
    try:
        same = Path(notebooks_dir).resolve() == out
    except (TypeError, ValueError, OSError):
        same = False  # find_notebooks refuses notebooks_dir itself
    if same:
        raise ValueError(
            f"out {str(out)!r} is the notebooks folder: the executed copies would overwrite "
            "the notebooks; choose another folder"
        )
    return out


def _execute(
    nb: Path, *, out: Path, tmp: Path, parameters: dict, timeout: float | None
) -> tuple[dict, dict | None, str | None]:
    """Run one notebook into ``out``: ``(meta, recorded figures or None, failure or None)``."""
    import papermill

    executed = out / nb.name
    record_file = tmp / f"{nb.stem}.json"
    peak_file = tmp / f"{nb.stem}.peak.json"
    folder = tmp / nb.stem  # the copy with the peak cell, one folder per notebook
    folder.mkdir()
    env = {HEADLESS_ENV: "1", RECORD_ENV: str(record_file), "MPLBACKEND": _INLINE_BACKEND}
    failure = None
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(_with_peak_cell(nb.resolve(), peak_file, folder)),
            str(executed),
            parameters=parameters,
            kernel_name="python3",
            language="python",
            cwd=str(nb.parent.resolve()),
            progress_bar=False,
            execution_timeout=timeout,
            kernel_manager_class=_kernel_manager_class(env),
        )
    except Exception as err:  # every failure is reported, then raised together
        failure = f"{_describe(err)}; executed copy: {executed}"
    wall = time.perf_counter() - start
    _strip_peak_cell(executed, nb.resolve())
    info: dict[str, Any] = {"wall_s": round(wall, 2)}
    if peak_file.exists():
        info.update(json.loads(peak_file.read_text()))
    info["status"] = "failed" if failure else "ok"
    if failure:
        info["error"] = failure
    figures = json.loads(record_file.read_text()) if record_file.exists() else None
    return info, figures, failure
