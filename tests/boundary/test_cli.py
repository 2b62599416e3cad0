"""``python -m lqft_lab``: every usage error is one line on stderr, exit 2, before any work.

The CLI is driven in-process through :func:`lqft_lab.__main__.main`. Every function that
would start work (a notebook run, a training run, a checkpoint or report written) is
replaced by one that fails the test, so a drawn bad argument that slipped through the
checks shows as a failure, not as minutes of training.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given

from lqft_lab.__main__ import main

from .harness import BOUNDARY

COVERED = {"lqft_lab.__main__.main"}

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


class WorkStarted(AssertionError):
    """Raised by the stand-ins of the functions that do the work."""


@pytest.fixture
def no_work(monkeypatch):
    """Replace everything that runs notebooks, trains, or writes results by a failure."""
    import lqft_lab.__main__ as cli
    import lqft_lab.io
    import lqft_lab.notebooks
    import lqft_lab.report
    import lqft_lab.train

    def started(*args, **kwargs):
        raise WorkStarted("work started despite a bad argument")

    monkeypatch.setattr(cli, "run_notebooks", started)
    monkeypatch.setattr(lqft_lab.notebooks, "_execute", started)
    for name in ("Trainer", "train_to_acceptance", "evaluate"):
        monkeypatch.setattr(lqft_lab.train, name, started)
    monkeypatch.setattr(lqft_lab.io, "save_checkpoint", started)
    monkeypatch.setattr(lqft_lab.report, "write_report", started)


def usage_error(capsys, argv: list[str], option: str) -> str:
    """``main(argv)`` exits 2 with one line ``error: ...`` on stderr naming ``option``."""
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse's own exit, should one get through
        rc = exit_.code
    captured = capsys.readouterr()
    assert rc == 2, f"{argv}: exit status {rc}"
    err = captured.err
    assert err.startswith("error: ") and err.count("\n") == 1, f"{argv}: stderr {err!r}"
    assert option in err, f"{argv}: {err!r} does not name {option}"
    assert len(err) < 300
    return err


def out_file(tmp_path) -> str:
    return str(tmp_path / "flow.safetensors")


# --- drawn bad values, as text on the command line ----------------------------------------

NOT_NUMBERS = st.sampled_from(["", "abc", "nan", "inf", "-inf", "NaN", "1e999", "-1e999", "1,5"])


def bad_integer_text(low: int, high: int | None = None) -> st.SearchStrategy:
    parts = [
        NOT_NUMBERS,
        st.integers(max_value=low - 1).map(str),
        st.floats(allow_nan=False, allow_infinity=False)
        .filter(lambda x: not x.is_integer())
        .map(repr),
        st.sampled_from(["2.0", "1e3", "0x10", "true"]),
    ]
    if high is not None:
        parts.append(st.integers(min_value=high + 1).map(str))
    return st.one_of(*parts)


def bad_real_text(low=None, high=None, low_open=False, high_open=False) -> st.SearchStrategy:
    parts = [NOT_NUMBERS]
    if low is not None:
        parts.append(st.floats(max_value=low, exclude_max=not low_open).map(repr))
    if high is not None:
        parts.append(st.floats(min_value=high, exclude_min=not high_open).map(repr))
    return st.one_of(*parts).filter(lambda t: t != "")


TRAIN_INTEGERS = {
    "--L": (2, 1024),
    "--steps": (1, None),
    "--batch-size": (1, None),
    "--seed": (0, 2**62),
    "--layers": (1, None),
    "--check-every": (1, None),
}
TRAIN_REALS = {
    "--m2": {},
    "--lam": {"low": 0},
    "--lr": {"low": 0, "low_open": True},
    "--target-acceptance": {"low": 0, "high": 1, "low_open": True, "high_open": True},
}


@BOUNDARY
@given(data=st.data())
@pytest.mark.parametrize("option", sorted(TRAIN_INTEGERS))
def test_train_refuses_bad_integers(option, data, no_work, capsys, tmp_path):
    low, high = TRAIN_INTEGERS[option]
    value = data.draw(bad_integer_text(low, high))
    usage_error(capsys, ["train", f"{option}={value}", "--out", out_file(tmp_path)], option)


@BOUNDARY
@given(data=st.data())
@pytest.mark.parametrize("option", sorted(TRAIN_REALS))
def test_train_refuses_bad_reals(option, data, no_work, capsys, tmp_path):
    value = data.draw(bad_real_text(**TRAIN_REALS[option]))
    usage_error(capsys, ["train", f"{option}={value}", "--out", out_file(tmp_path)], option)


@BOUNDARY
@given(
    hidden=st.one_of(
        NOT_NUMBERS.filter(lambda t: t != "1,5"),
        st.sampled_from(["8,0", "8,-1", "8,", ",", "2.5", "8;8"]),
    )
)
def test_train_refuses_bad_hidden_channels(hidden, no_work, capsys, tmp_path):
    usage_error(capsys, ["train", f"--hidden={hidden}", "--out", out_file(tmp_path)], "--hidden")


@BOUNDARY
@given(data=st.data())
@pytest.mark.parametrize("option", ["--timeout", "--jobs"])
def test_notebooks_refuses_bad_integers(option, data, no_work, capsys, tmp_path):
    high = 10**6 if option == "--timeout" else None
    value = data.draw(bad_integer_text(1, high))
    argv = ["notebooks", f"{option}={value}", "--notebooks-dir", str(NOTEBOOKS)]
    usage_error(capsys, [*argv, "--out", str(tmp_path / "out")], option)


def _is_date(text: str) -> bool:
    try:
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None and bool(
            datetime.date.fromisoformat(text)
        )
    except ValueError:
        return False


@BOUNDARY
@given(
    date=st.one_of(st.text(max_size=12), st.sampled_from(["2020-13-01", "2020-02-30", "20-1-1"]))
)
def test_report_refuses_bad_dates(date, no_work, capsys, tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{}")
    argv = ["report", "--metrics", str(metrics), "--out", str(tmp_path), f"--date={date}"]
    if _is_date(date):  # a real date is accepted: the run reaches write_report
        with pytest.raises(WorkStarted):
            main(argv)
    else:
        usage_error(capsys, argv, "--date")


# --- the cases, one regression test each -------------------------------------------


def test_train_layers_0_is_refused_not_taken_as_the_default(no_work, capsys, tmp_path):
    # `--layers 0` used to train a 16-layer flow: 0 was read as "not given"
    err = usage_error(capsys, ["train", "--layers", "0", "--out", out_file(tmp_path)], "--layers")
    assert "got '0'" in err


@pytest.mark.parametrize("timeout", ["0", "-1", "2.5"])
def test_notebooks_timeout_must_be_a_positive_integer(timeout, no_work, capsys, tmp_path):
    # 0 and -1 meant "no limit"; 2.5 failed every notebook with a traitlets error
    argv = ["notebooks", f"--timeout={timeout}", "--notebooks-dir", str(NOTEBOOKS)]
    err = usage_error(capsys, [*argv, "--out", str(tmp_path)], "--timeout")
    assert "positive" in err or ">= 1" in err


def test_train_out_is_checked_before_training(no_work, capsys, tmp_path):
    # a folder, a path under a file, a missing suffix, and a place nobody can write: all
    # used to fail with a traceback after the whole training run
    (tmp_path / "notes.txt").write_text("")
    for out in (
        str(tmp_path),
        str(tmp_path) + "/",
        str(tmp_path / "notes.txt" / "flow.safetensors"),
        str(tmp_path / "flow.pt"),
        "",
        "/sys/flow.safetensors",
    ):
        argv = ["train", "--L", "4", "--layers", "2", "--device", "cpu", "--out", out]
        usage_error(capsys, argv, "--out")


def test_a_good_out_reaches_training(no_work, capsys, tmp_path):
    # the checks above must not refuse everything: with a writable --out the run starts
    # (here: the stand-in of Trainer is reached), and a missing folder is fine (created)
    out = tmp_path / "new" / "folder" / "flow.safetensors"
    with pytest.raises(WorkStarted):
        main(["train", "--L", "4", "--layers", "2", "--device", "cpu", "--out", str(out)])


def test_every_usage_error_is_one_line(no_work, capsys, tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{}")
    (tmp_path / "file").write_text("")
    cases = [
        ([], "command"),
        (["frobnicate"], "frobnicate"),
        (["train"], "--out"),
        (["train", "--out", out_file(tmp_path), "--device", "tpu"], "--device"),
        (["train", "--out", out_file(tmp_path), "--init", str(tmp_path / "no.safetensors")],
         "--init"),
        (["train", "--out", out_file(tmp_path), "--L", "7"], "L"),
        (["train", "--out", out_file(tmp_path), "--lam", "-1"], "--lam"),
        (["train", "--out", out_file(tmp_path), "--m2", "-4", "--lam", "0"], "lam"),
        (["train", "--out", out_file(tmp_path), "--no-such-option"], "--no-such-option"),
        (["notebooks", "--mode", "slow"], "--mode"),
        (["notebooks", "--notebooks-dir", str(tmp_path / "none")], "--notebooks-dir"),
        (["notebooks", "--notebooks-dir", str(NOTEBOOKS), "--out", str(tmp_path / "file")],
         "--out"),
        (["report", "--metrics", str(tmp_path / "none.json")], "--metrics"),
        (["report", "--metrics", str(metrics), "--gpu", " "], "--gpu"),
        (["report", "--metrics", str(metrics), "--out", str(tmp_path / "file")], "--out"),
    ]  # fmt: skip
    for argv, option in cases:
        usage_error(capsys, argv, option)


def test_an_unknown_notebook_is_refused_before_any_runs(monkeypatch, capsys, tmp_path):
    # run_notebooks itself (not the stand-in) checks --only before executing anything
    import lqft_lab.notebooks

    def started(*args, **kwargs):
        raise WorkStarted("a notebook was executed")

    monkeypatch.setattr(lqft_lab.notebooks, "_execute", started)
    argv = ["notebooks", "--notebooks-dir", str(NOTEBOOKS), "--only", "99_none"]
    usage_error(capsys, [*argv, "--out", str(tmp_path / "out"), "--no-progress"], "99_none")


def test_help_still_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0 and "--layers" in capsys.readouterr().out
