"""The notebook runner and `record()`, then the figures the real notebooks record."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lqft_lab import notebooks as nbrun
from lqft_lab.notebooks import NotebookFailed, find_notebooks, record, recorded, run_notebooks

# --------------------------------------------------------------------------- toy notebooks


def _write_notebook(path, *sources: str) -> None:
    """A notebook with the standard `parameters` cell followed by code cells `sources`."""
    params = new_code_cell('mode = "fast"\ndevice = "auto"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# toy"), params, *map(new_code_cell, sources)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


TOY = """
import os, sys
from lqft_lab.notebooks import record
record("x", 2 * seed + 1)
record("mode", mode)
record("device", device)
record("cwd", os.path.basename(os.getcwd()))
record("python", sys.executable)
record("headless", os.environ.get("LQFT_LAB_HEADLESS"))
"""


@pytest.fixture
def toy_dir(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write_notebook(folder / "01_toy.ipynb", TOY)
    _write_notebook(
        folder / "02_broken.ipynb",
        'from lqft_lab.notebooks import record\nrecord("before", 1.5)',
        "raise ZeroDivisionError('toy failure')",
    )
    (folder / "scratch.ipynb").write_text("not a numbered notebook, never run")
    return folder


def test_find_notebooks_takes_numbered_ones_in_order(toy_dir):
    assert [nb.stem for nb in find_notebooks(toy_dir)] == ["01_toy", "02_broken"]
    for name in ("01b_companion.ipynb", "1_short.ipynb", "01bb_two_letters.ipynb"):
        (toy_dir / name).write_text("{}")
    assert [nb.stem for nb in find_notebooks(toy_dir)] == ["01_toy", "01b_companion", "02_broken"]


@pytest.mark.notebooks
def test_run_injects_parameters_and_writes_metrics(toy_dir, tmp_path):
    out = tmp_path / "out"
    metrics = run_notebooks(
        device="cpu",
        only=["01"],
        out=out,
        notebooks_dir=toy_dir,
        extra_parameters={"seed": 3},
        progress=False,
    )
    figures = metrics["01_toy"]
    assert figures["x"] == 7  # seed=3 reached the notebook
    assert figures["mode"] == "fast" and figures["device"] == "cpu"
    assert figures["cwd"] == "notebooks"  # relative paths resolve from the notebooks folder
    assert figures["python"] == sys.executable  # the kernel is this interpreter
    assert figures["headless"] == "1"
    assert set(metrics) == {"01_toy", "_meta"}
    meta = metrics["_meta"]["01_toy"]
    assert meta["mode"] == "fast" and meta["device"] == "cpu" and meta["status"] == "ok"
    assert meta["wall_s"] > 0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    executed = nbformat.read(out / "01_toy.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "seed = 3" in injected[0].source


@pytest.mark.notebooks
def test_jobs_run_notebooks_at_once_and_collect_the_same(toy_dir, tmp_path):
    sleeper = (
        "import time\nfrom lqft_lab.notebooks import record\n"
        "t0 = time.time()\ntime.sleep(2.0)\nrecord('t0', t0)\nrecord('t1', time.time())"
    )
    _write_notebook(toy_dir / "03_sleep.ipynb", sleeper)
    _write_notebook(toy_dir / "04_sleep.ipynb", sleeper)
    with pytest.raises(NotebookFailed) as failed:
        run_notebooks(out=tmp_path, notebooks_dir=toy_dir, progress=False, jobs=3)
    metrics = failed.value.metrics
    assert list(metrics) == ["01_toy", "02_broken", "03_sleep", "04_sleep", "_meta"]
    assert list(metrics["_meta"]) == ["01_toy", "02_broken", "03_sleep", "04_sleep"]
    assert metrics["_meta"]["02_broken"]["status"] == "failed" and metrics["02_broken"] == {
        "before": 1.5
    }
    assert metrics["01_toy"]["x"] == 1 and metrics["_meta"]["01_toy"]["status"] == "ok"
    a, b = metrics["03_sleep"], metrics["04_sleep"]
    assert max(a["t0"], b["t0"]) < min(a["t1"], b["t1"])  # the two sleeps overlapped
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_notebooks(out=tmp_path, notebooks_dir=toy_dir, jobs=0)


@pytest.mark.notebooks
def test_run_selects_by_full_name(toy_dir, tmp_path):
    metrics = run_notebooks(only="01_toy", out=tmp_path, notebooks_dir=toy_dir, progress=False)
    assert list(metrics["_meta"]) == ["01_toy"]


@pytest.mark.notebooks
def test_failing_notebook_is_named_and_others_are_kept(toy_dir, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(NotebookFailed) as info:
        run_notebooks(device="cpu", out=out, notebooks_dir=toy_dir, progress=False)
    err = info.value
    assert list(err.failures) == ["02_broken"]
    message = str(err)
    assert "02_broken" in message and "ZeroDivisionError" in message and "toy failure" in message
    assert str(out / "02_broken.ipynb") in message  # the executed copy with the traceback
    assert (out / "02_broken.ipynb").exists()
    written = json.loads((out / "metrics.json").read_text())
    assert written == err.metrics
    assert written["01_toy"]["x"] == 1
    # a failed notebook keeps what it recorded before failing, marked failed in _meta
    assert written["02_broken"] == {"before": 1.5}
    assert written["_meta"]["02_broken"]["status"] == "failed"
    assert "ZeroDivisionError" in written["_meta"]["02_broken"]["error"]


@pytest.mark.notebooks
def test_run_records_the_kernels_peak_memory(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write_notebook(folder / "01_small.ipynb", "import numpy as np")
    # 200 MiB that are written to, so every page is resident at once.
    _write_notebook(folder / "02_big.ipynb", "import numpy as np\nbig = np.ones(200 * 2**17)")
    before = (folder / "02_big.ipynb").read_text()
    out = tmp_path / "out"
    meta = run_notebooks(device="cpu", out=out, notebooks_dir=folder, progress=False)["_meta"]
    small, big = meta["01_small"]["peak_rss_mb"], meta["02_big"]["peak_rss_mb"]
    assert 0 < small < big
    assert big - small >= 190, (small, big)  # a few MiB of slack for allocator noise
    assert "peak_gpu_mb" not in meta["02_big"]  # the kernel never touched CUDA
    # The measuring cell ran in the kernel but is in neither the source nor the executed copy.
    assert (folder / "02_big.ipynb").read_text() == before
    executed = nbformat.read(out / "02_big.ipynb", as_version=4)
    assert not any(nbrun.PEAK_TAG in c.metadata.get("tags", []) for c in executed.cells)
    assert executed.cells[-1].source.endswith("big = np.ones(200 * 2**17)")
    assert executed.metadata.papermill.input_path == str(folder / "02_big.ipynb")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"only": ["nonexistent"]}, r"nonexistent.*available: 01_toy, 02_broken"),
        ({"only": ["01", "7"]}, r"unknown notebook\(s\) 7"),
        ({"mode": "slow"}, "mode must be one of fast, full"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ],
)
def test_bad_arguments_raise_before_running(toy_dir, tmp_path, kwargs, match):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=match):
        run_notebooks(out=out, notebooks_dir=toy_dir, progress=False, **kwargs)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_raises_before_running(toy_dir, tmp_path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        run_notebooks(device="cuda", out=tmp_path / "out", notebooks_dir=toy_dir)
    assert not (tmp_path / "out").exists()


def test_missing_or_empty_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_notebooks(notebooks_dir=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        run_notebooks(notebooks_dir=tmp_path)


def test_cli_unknown_notebook_is_one_line_and_nonzero(toy_dir, tmp_path):
    cmd = [sys.executable, "-m", "lqft_lab", "notebooks", "--only", "nonexistent"]
    cmd += ["--notebooks-dir", str(toy_dir), "--out", str(tmp_path / "out")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nonexistent" in lines[0] and "01_toy" in lines[0], done.stderr


# --------------------------------------------------------------------------- record()


@pytest.fixture
def record_file(tmp_path, monkeypatch):
    path = tmp_path / "records.json"
    monkeypatch.setenv(nbrun.RECORD_ENV, str(path))
    monkeypatch.setattr(nbrun, "_recorded", {})
    return path


def test_record_merges_into_existing_file(record_file):
    record_file.write_text(json.dumps({"earlier": 1}))
    assert record("ess", 0.25) == 0.25
    record("acceptance", torch.tensor(0.5, dtype=torch.float64))
    record("n", np.int64(3))
    record("ok", np.bool_(True))
    record("tau", torch.tensor([0.5, 1.5]))
    record("label", "phi4")
    assert json.loads(record_file.read_text()) == {
        "earlier": 1,
        "ess": 0.25,
        "acceptance": 0.5,
        "n": 3,
        "ok": True,
        "tau": [0.5, 1.5],
        "label": "phi4",
    }
    assert recorded()["tau"] == [0.5, 1.5] and "earlier" not in recorded()
    record("ess", 0.3)  # a second call replaces the figure
    assert json.loads(record_file.read_text())["ess"] == 0.3
    assert not list(record_file.parent.glob("*.tmp"))  # the atomic write left nothing behind


def test_record_stores_nan_as_null(record_file):
    value = np.float32("nan")
    assert math.isnan(record("chi2_pull", value))
    record("bound", [1.0, float("inf")])
    assert json.loads(record_file.read_text()) == {"chi2_pull": None, "bound": [1.0, None]}


def test_record_without_runner_only_keeps_figures_in_process(tmp_path, monkeypatch):
    monkeypatch.delenv(nbrun.RECORD_ENV, raising=False)
    monkeypatch.setattr(nbrun, "_recorded", {})
    monkeypatch.chdir(tmp_path)
    record("x", 1)
    assert recorded() == {"x": 1}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("", 1.0, ValueError),
        ("  ", 1.0, ValueError),
        (3, 1.0, ValueError),
        ("x", {"a": 1}, TypeError),
        ("x", object(), TypeError),
        ("x", list(range(1001)), ValueError),
        ("x", np.zeros((40, 40)), ValueError),  # the limit counts every entry of a table
    ],
)
def test_record_rejects_bad_input(record_file, name, value, error):
    with pytest.raises(error):
        record(name, value)
    assert not record_file.exists()


# --------------------------------------------------------------------------- real notebooks

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REAL_NOTEBOOKS = [nb.stem for nb in find_notebooks(NOTEBOOKS)] if NOTEBOOKS.is_dir() else []
# Executing every notebook in fast mode is minutes per notebook; the limit is for all of them.
RUN_ALL_TIMEOUT = 2700


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
@pytest.mark.parametrize("stem", REAL_NOTEBOOKS)
def test_notebook_runs_in_fast_mode(notebook_metrics, stem):
    meta = notebook_metrics["_meta"][stem]
    assert meta["status"] == "ok", meta.get("error")


# The executed copies the session's run wrote (tests/conftest.py's notebook_metrics).
EXECUTED = Path(__file__).resolve().parents[1] / "build" / "notebooks-test"
# Cells with this tag must print what the notebook stores in them (nbval's tag, so that
# `make nbval` checks the same cells).
CHECK_OUTPUT_TAG = "nbval-check-output"


def _text_outputs(cell) -> list[tuple[str, str]]:
    """A code cell's printed text: streams and the text/plain of results, in order."""
    texts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            texts.append((out["name"], out["text"]))
        elif out["output_type"] in ("execute_result", "display_data"):
            plain = out.get("data", {}).get("text/plain")
            if plain is not None and "image/png" not in out["data"]:
                texts.append(("text/plain", plain))
        elif out["output_type"] == "error":
            texts.append(("error", f"{out['ename']}: {out['evalue']}"))
    # consecutive writes to one stream are one text, however the kernel flushed them
    merged: list[tuple[str, str]] = []
    for name, text in texts:
        if merged and name == merged[-1][0] and name in ("stdout", "stderr"):
            merged[-1] = (name, merged[-1][1] + text)
        else:
            merged.append((name, text))
    return merged


def _executed(notebook_metrics, stem):
    meta = notebook_metrics["_meta"][stem]
    assert meta["status"] == "ok", meta.get("error")
    return nbformat.read(EXECUTED / f"{stem}.ipynb", as_version=4)


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
@pytest.mark.parametrize("stem", REAL_NOTEBOOKS)
def test_tagged_cells_print_what_they_stored(notebook_metrics, stem):
    """What nbval's lax mode checked, read from the one execution of the session."""
    source = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    executed = {cell.get("id"): cell for cell in _executed(notebook_metrics, stem).cells}
    tagged = [c for c in source.cells if CHECK_OUTPUT_TAG in c.metadata.get("tags", [])]
    for cell in tagged:
        ran = executed.get(cell.get("id"))
        assert ran is not None and ran.source == cell.source, f"cell {cell.get('id')} not run"
        assert _text_outputs(ran) == _text_outputs(cell), f"{stem}, cell {cell.get('id')}"


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
@pytest.mark.parametrize("stem", REAL_NOTEBOOKS)
def test_markdown_the_notebooks_display_renders_clean(notebook_metrics, stem):
    """Markdown made at run time (``display(Markdown(...))``) passes the source checks too."""
    from test_notebook_style import markdown_problems

    found = [
        f"cell {i}: {problem}"
        for i, cell in enumerate(_executed(notebook_metrics, stem).cells)
        for out in cell.get("outputs", [])
        for problem in markdown_problems(out.get("data", {}).get("text/markdown", ""))
    ]
    assert not found, f"{stem}:\n" + "\n".join(found)


def test_text_outputs_merge_streams_and_skip_figures():
    from nbformat.v4 import new_output

    cell = new_code_cell("x")
    cell.outputs = [
        new_output("stream", name="stdout", text="all checks "),
        new_output("stream", name="stdout", text="passed\n"),
        new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"}),
        new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
    ]
    assert _text_outputs(cell) == [("stdout", "all checks passed\n"), ("text/plain", "42")]
    cell.outputs[1] = new_output("stream", name="stdout", text="failed\n")
    assert _text_outputs(cell)[0] == ("stdout", "all checks failed\n")


# Binder restarts a kernel that grows past 2 GB; 1.5 GiB leaves room for the JupyterLab
# server and a second open notebook on the same Binder.
PEAK_RSS_LIMIT_MB = 1536


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
@pytest.mark.parametrize("stem", REAL_NOTEBOOKS)
def test_notebook_peak_memory_in_fast_mode(notebook_metrics, stem):
    meta = notebook_metrics["_meta"][stem]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["peak_rss_mb"] < PEAK_RSS_LIMIT_MB, (
        f"{stem} peaked at {meta['peak_rss_mb']:.0f} MiB resident in fast mode; "
        f"Binder needs it below {PEAK_RSS_LIMIT_MB} MiB"
    )


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
def test_notebook_01_records(notebook_metrics):
    meta = notebook_metrics["_meta"]["01_phi4_real_nvp"]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["mode"] == "fast"
    # The budget for notebook 01 in fast mode is 5 minutes on 2 CPU cores.
    assert meta["wall_s"] < 300, meta["wall_s"]
    figures = notebook_metrics["01_phi4_real_nvp"]
    wanted = {
        "ess",
        "acceptance",
        "chi2_flow",
        "chi2_hmc",
        "chi2_local",
        "chi2_pull",
        "chi2_pull_local",
        "E_pull",
        "free_chi2_pull",
        "free_phi2_pull",
    }
    missing = wanted - set(figures)
    assert not missing, f"notebook 01 did not record {sorted(missing)}"
    # Exact anchor: HMC on the free field against the closed form.
    assert abs(figures["free_chi2_pull"]) < 4 and abs(figures["free_phi2_pull"]) < 4
    # Three samplers of the same distribution agree within 4 sigma (Gamma-method errors).
    for pull in ("chi2_pull", "chi2_pull_local", "E_pull"):
        assert abs(figures[pull]) < 4, (pull, figures[pull])
    # The statistics behind the pulls have power: enough proposals and fresh samples, and a
    # relative error on chi_2 below 2.5%, so that a 10% bias would show as more than 4 sigma.
    assert figures["n_proposals"] >= 10_000 and figures["ess_samples"] >= 4096
    assert figures["chi2_flow_err"] < 0.025 * figures["chi2_flow"]
    # Fast mode uses the pretrained flow; its quality is part of what the lab ships.
    assert figures["pretrained"] is True
    assert figures["ess"] >= 0.3 and 0.3 <= figures["acceptance"] <= 1


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
def test_notebook_01b_records(notebook_metrics):
    meta = notebook_metrics["_meta"]["01b_phi4_at_scale"]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["mode"] == "fast"
    # The budget for the affected notebook in fast mode is 5 minutes on 2 CPU cores.
    assert meta["wall_s"] < 300, meta["wall_s"]
    figures = notebook_metrics["01b_phi4_at_scale"]
    assert figures["ensembles"] == "E1,E2"
    for name in ("E1", "E2"):
        # the pole mass of the flow chains against arXiv:1904.12072's table, within 3 sigma
        assert abs(figures[f"mpL_pull_{name}"]) < 3, (name, figures[f"mpL_pull_{name}"])
        assert figures[f"mpL_{name}_err"] < 0.1  # a check with teeth: ~2.5% of m_p L
        # local Metropolis decorrelates slowest at both sizes, flow-MH and HMC faster
        assert figures[f"tau_chi2_local_{name}"] > figures[f"tau_chi2_hmc_{name}"]
    for alg in ("flow", "hmc", "local"):
        assert f"z_{alg}" in figures and figures[f"z_{alg}_err"] > 0
    # Two lattice sizes and short chains make the fits indicative only; HMC's slowing down
    # is already significant (arXiv:1904.12072: z = 1.4-2.7 for HMC).
    assert figures["z_hmc"] - 2 * figures["z_hmc_err"] > 1, (figures["z_hmc"], figures["z_hmc_err"])
    # volume transfer: ESS falls with the volume. Fine-tuning at L = 12 must not make the
    # flow worse: its reverse-KL loss may not rise beyond 3σ. It gains little (the flow is
    # converged at L0 = 8, and a local flow's loss per site is the same objective at any L);
    # the ESS is not compared, as 4096 samples scatter it by more than fine-tuning moves it.
    ess = [figures[f"ess_transfer_L{L}"] for L in (8, 12, 16, 24)]
    assert ess == sorted(ess, reverse=True) and ess[0] > 0.3
    assert figures["finetune_gain_sigma_L12"] > -3, figures["finetune_gain_sigma_L12"]


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
def test_notebook_02_records(notebook_metrics):
    meta = notebook_metrics["_meta"]["02_u1_equivariant_flows"]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["mode"] == "fast"
    # The budget for notebook 02 in fast mode is 5 minutes on 2 CPU cores.
    assert meta["wall_s"] < 300, meta["wall_s"]
    figures = notebook_metrics["02_u1_equivariant_flows"]
    wanted = {"acceptance", "ess", "plaq_pull", "chi_t_pull", "logZ_pull"}
    missing = wanted - set(figures)
    assert not missing, f"notebook 02 did not record {sorted(missing)}"
    # Flow-MH and importance sampling against the exact 2D U(1) results (character
    # expansion), within 4 sigma of Gamma-method / delta-method errors.
    for pull in ("plaq_pull", "chi_t_pull", "logZ_pull"):
        assert abs(figures[pull]) < 4, (pull, figures[pull])
    # The pulls have power: the plaquette to 0.5%, chi_t to 5%, Z itself to 5%.
    assert figures["plaq_flow_err"] < 0.005 * figures["plaq_flow"]
    assert figures["chi_t_flow_err"] < 0.05 * figures["chi_t_flow"]
    assert figures["logZ_err"] < 0.05
    assert figures["n_proposals"] >= 10_000 and figures["ess_samples"] >= 4096
    # Fast mode starts from the shipped flow (data/models/u1_L8_b2); its quality is part of
    # what the lab ships (ESS 0.64, acceptance 0.635 when saved; 0.64 and 0.625 in fast mode;
    # before its forward-KL stage 0.50 and 0.569 when saved, 0.52 and 0.58 in fast mode).
    # The ESS of 8192 samples scatters by a few hundredths, the acceptance of 25 600
    # proposals by less than 0.01: the bounds sit well below both, and above the flow
    # without the forward-KL stage.
    assert figures["pretrained"] is True
    assert figures["ess"] >= 0.58 and 0.60 <= figures["acceptance"] <= 1
    # Topological freezing: HMC's tau_int(Q) grows by more than 10x from beta = 2 to 6, and
    # HMC and the heatbath reproduce the exact plaquette at beta = 2 where Q moves freely.
    assert figures["tau_Q_hmc_b6"] > 10 * figures["tau_Q_hmc_b2"]
    assert figures["tau_Q_heatbath_b4"] > figures["tau_Q_heatbath_b2"]
    for alg in ("hmc", "heatbath", "flow"):
        assert abs(figures[f"plaq_pull_{alg}_b2"]) < 4, alg
    # The shipped flows at beta = 4 and 6 (data/models/u1_L8_b4, _b6) run flow-MH in the scan.
    # At beta = 4 and 6 the flow's chains are long enough for a converged tau_int(Q), and
    # they are exact: pulls within 4 sigma. At beta = 4 its tau (2.6 when recorded) is a
    # sixteenth of HMC's (42.7 +- 7.6). At beta = 6 HMC's tau is only a lower bound (594
    # when recorded; the flow's 3.2), so the ratio recorded there is a lower bound too: 188
    # when recorded, where full mode asks 20 at L = 16. The charge moved 3704 times in the
    # flow's 25 600 proposals against 5 in HMC's 32 000 trajectories.
    for b in (4, 6):
        assert not figures[f"tau_Q_flow_b{b}_lower_bound"], b
        for pull in (f"plaq_pull_flow_b{b}", f"chi_t_pull_flow_b{b}"):
            assert abs(figures[pull]) < 4, (pull, figures[pull])
    assert figures["tau_Q_flow_b4"] < figures["tau_Q_hmc_b4"] / 4
    assert figures["tau_Q_hmc_over_flow_b6"] >= 20
    # Flow-MH with a heatbath sweep after each move (fast mode: at beta = 6 only) is exact
    # too, and its charge decorrelates faster than flow-MH's alone: 1.90 +- 0.10 against
    # 3.15 +- 0.21 steps when recorded.
    assert not figures["tau_Q_flow_heatbath_b6_lower_bound"]
    for pull in ("plaq_pull_flow_heatbath_b6", "chi_t_pull_flow_heatbath_b6"):
        assert abs(figures[pull]) < 4, (pull, figures[pull])
    assert figures["tau_Q_flow_heatbath_b6"] < figures["tau_Q_flow_b6"]
    assert figures["Q_changes_flow_b6"] > 10 * max(1, figures["Q_changes_hmc_b6"])
    # The flows' proposals carry too much topology, more so as beta grows: the charge's own
    # divergence (a lower bound on the whole, by data processing) was 0.02, 0.17 and 0.57
    # nats of 0.24, 0.66 and 1.52 when recorded; each is a plug-in estimate from 8192 samples.
    kl_Q = [figures[f"kl_Q_b{b}"] for b in (2, 4, 6)]
    assert kl_Q == sorted(kl_Q) and kl_Q[2] > 5 * kl_Q[0], kl_Q
    assert all(figures[f"kl_Q_b{b}"] < figures[f"kl_b{b}"] for b in (2, 4, 6))


@pytest.mark.notebooks
@pytest.mark.timeout(RUN_ALL_TIMEOUT)
def test_notebook_03_records(notebook_metrics):
    meta = notebook_metrics["_meta"]["03_su3_spectral_flows"]
    assert meta["status"] == "ok", meta.get("error")
    assert meta["mode"] == "fast"
    # The budget for notebook 03 in fast mode is 5 minutes on 2 CPU cores.
    assert meta["wall_s"] < 300, meta["wall_s"]
    figures = notebook_metrics["03_su3_spectral_flows"]
    wanted = {"acceptance_lattice", "plaq_pull"} | {f"ess_single_su3_{t}" for t in "abc"}
    missing = wanted - set(figures)
    assert not missing, f"notebook 03 did not record {sorted(missing)}"
    # Single matrices: even fast mode's short training gives ESS > 0.9 (measured on fresh
    # samples), and reweighting reproduces the exact <(1/N) Re tr U> of the Weyl formula.
    for t in "abc":
        assert figures[f"ess_single_su3_{t}"] > 0.9, t
        assert abs(figures[f"trace_pull_single_su3_{t}"]) < 4, t
    assert figures["ess_samples"] >= 4096 and figures["n_proposals"] >= 10_000
    # The lattice: flow-MH, HMC and heatbath + OR reproduce the exact 2D SU(2) and SU(3)
    # plaquettes (character expansion) within 4 sigma; the shipped flows keep their
    # acceptance (on fresh samples when saved / in fast mode's chain: SU(2) 0.33 / 0.32,
    # SU(3) 0.55 / 0.55; the issue asks 0.3 of full mode, which trains its own).
    for alg, N in itertools.product(("flow", "hmc", "heatbath"), (2, 3)):
        assert abs(figures[f"plaq_pull_{alg}_su{N}"]) < 4, (alg, N)
    assert figures["acceptance_lattice"] >= 0.45
    assert figures["acceptance_lattice_su2"] >= 0.28
