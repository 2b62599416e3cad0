"""Boundary tests of lqft_lab.train, lqft_lab.notebooks and lqft_lab.report: bad input is
refused by name before any work starts; edge-case input gives finite results (see
harness.py for the contract). No notebook is executed here: ``run_notebooks`` is driven
only with arguments it must refuse, and the tests check that nothing was started or
created.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from lqft_lab import notebooks as nbrun
from lqft_lab.actions import Phi4Action
from lqft_lab.flows import build_real_nvp
from lqft_lab.notebooks import find_notebooks, record, recorded, run_notebooks
from lqft_lab.report import Target, TargetCheck, check_targets, render_report, write_report
from lqft_lab.samplers import LocalMetropolis
from lqft_lab.train import (
    ChainTrainer,
    TrainConfig,
    Trainer,
    evaluate,
    train_and_evaluate,
    train_to_acceptance,
)

from .harness import (
    BOUNDARY,
    assert_finite,
    bad_integers,
    bad_reals,
    expect_error_naming,
    not_integers,
    refuses,
)

COVERED = {
    "lqft_lab.train.TrainConfig",
    "lqft_lab.train.Trainer",
    "lqft_lab.train.ChainTrainer",
    "lqft_lab.train.evaluate",
    "lqft_lab.train.train_and_evaluate",
    "lqft_lab.train.train_to_acceptance",
    "lqft_lab.notebooks.find_notebooks",
    "lqft_lab.notebooks.record",
    "lqft_lab.notebooks.recorded",
    "lqft_lab.notebooks.run_notebooks",
    "lqft_lab.report.Target",
    "lqft_lab.report.TargetCheck",
    "lqft_lab.report.check_targets",
    "lqft_lab.report.render_report",
    "lqft_lab.report.write_report",
}

ACTION = Phi4Action(1.0, 0.0)


def _model():
    return build_real_nvp(L=4, n_layers=2, hidden=(4,), seed=0)


MODEL = _model()  # read-only in these tests: nothing here trains it


# ============================================================== TrainConfig

INTEGER_FIELDS = {"n_steps": 1, "batch_size": 1, "log_every": 1}


@BOUNDARY
@given(field=st.sampled_from(sorted(INTEGER_FIELDS)), data=st.data())
def test_train_config_refuses_bad_integer_fields(field, data):
    value = data.draw(bad_integers(INTEGER_FIELDS[field]))
    err = refuses(TrainConfig, field, **{field: value})
    assert isinstance(err, ValueError)  # a config's refusals are ValueErrors, as always


@BOUNDARY
@given(lr=bad_reals(0, low_open=True))
def test_train_config_refuses_a_bad_lr(lr):
    refuses(TrainConfig, "lr", lr=lr)


@BOUNDARY
@given(factor=st.one_of(bad_reals(0, 1, low_open=True)))
def test_train_config_refuses_a_bad_lr_min_factor(factor):
    refuses(TrainConfig, "lr_min_factor", lr_min_factor=factor)


@BOUNDARY
@given(clip=bad_reals(0, low_open=True).filter(lambda v: v is not None))
def test_train_config_refuses_a_bad_grad_clip(clip):
    refuses(TrainConfig, "grad_clip", grad_clip=clip)


@BOUNDARY
@given(seed=st.one_of(not_integers, st.integers(max_value=-1), st.integers(min_value=2**63)))
def test_train_config_refuses_a_bad_seed(seed):
    refuses(TrainConfig, "seed", seed=seed)


@BOUNDARY
@given(
    schedule=st.one_of(
        st.text(max_size=6).filter(lambda s: s != "cosine"), st.sampled_from([1, ["cosine"], True])
    )
)
def test_train_config_refuses_a_bad_lr_schedule(schedule):
    refuses(TrainConfig, "lr_schedule", lr_schedule=schedule)


@BOUNDARY
@given(graph=st.sampled_from([1, 0, "yes", 1.0, "None"]))
def test_train_config_refuses_a_cuda_graph_that_is_not_bool_or_none(graph):
    refuses(TrainConfig, "cuda_graph", cuda_graph=graph)


def test_train_config_validates_every_field_at_construction():
    # Regression (issue 25): every field is checked when the config is made, by name.
    import numpy as np

    for field, value in [
        ("n_steps", 0),
        ("batch_size", 2.5),
        ("lr", math.nan),
        ("log_every", -3),
        ("seed", "0"),
        ("lr_min_factor", 0.0),
        ("grad_clip", math.inf),
        ("lr_schedule", "linear"),
        ("cuda_graph", 1),
    ]:
        with expect_error_naming(field):
            TrainConfig(**{field: value})
    config = TrainConfig(n_steps=np.int64(5), seed=np.int32(3), lr=np.float32(0.5))
    assert type(config.n_steps) is int and type(config.seed) is int and type(config.lr) is float
    assert json.dumps(config.to_dict())  # plain Python values


# ============================================================== Trainer, ChainTrainer


@BOUNDARY
@given(model=st.sampled_from([None, 3, "flow", torch.nn.Linear(2, 2), torch.nn.Sequential()]))
def test_trainers_refuse_a_model_that_is_not_a_flow(model):
    refuses(Trainer, "model", model, ACTION)
    refuses(ChainTrainer, "model", model, ACTION)


@BOUNDARY
@given(action=st.sampled_from([None, 3, "phi4"]))
def test_trainers_refuse_an_action_that_is_not_callable(action):
    refuses(Trainer, "action", MODEL, action)


@BOUNDARY
@given(config=st.sampled_from([{"n_steps": 3}, 3, "fast"]))
def test_trainers_refuse_a_config_that_is_not_a_train_config(config):
    refuses(Trainer, "config", MODEL, ACTION, config)
    refuses(ChainTrainer, "config", MODEL, ACTION, config)


@BOUNDARY
@given(callbacks=st.sampled_from([3, [None], [print, "log"]]))
def test_trainer_refuses_callbacks_that_are_not_functions(callbacks):
    refuses(Trainer, "callbacks", MODEL, ACTION, callbacks=callbacks)


@BOUNDARY
@given(n_local=bad_integers(0))
def test_chain_trainer_refuses_a_bad_n_local(n_local):
    refuses(ChainTrainer, "n_local", MODEL, ACTION, n_local=n_local)


@BOUNDARY
@given(local=st.sampled_from([3, "heatbath", object()]))
def test_chain_trainer_refuses_a_local_that_is_not_a_sampler(local):
    refuses(ChainTrainer, "local", MODEL, ACTION, local=local)


def test_trainer_methods_refuse_bad_input_and_a_short_run_is_finite():
    trainer = Trainer(_model(), ACTION, TrainConfig(n_steps=2, batch_size=4, log_every=1))
    with expect_error_naming("fn"):
        trainer.add_callback("print")
    for n in (-1, 1.5, "2"):
        with expect_error_naming("n_steps"):
            trainer.train(n)
    history = trainer.train()
    assert len(history) == 2
    assert_finite([{k: v for k, v in h.items() if k != "time"} for h in history])
    chain = ChainTrainer(
        _model(),
        ACTION,
        TrainConfig(n_steps=2, batch_size=4, log_every=1),
        local=LocalMetropolis(ACTION),
        n_local=1,
    )
    assert_finite([h["loss"] for h in chain.train()])


# ============================================================== evaluate & co.


@BOUNDARY
@given(n=bad_integers(2))
def test_evaluate_refuses_a_bad_n_samples(n):
    refuses(evaluate, "n_samples", MODEL, ACTION, n)


@BOUNDARY
@given(batch_size=bad_integers(1))
def test_evaluate_refuses_a_bad_batch_size(batch_size):
    refuses(evaluate, "batch_size", MODEL, ACTION, 8, batch_size=batch_size)


def test_evaluate_refuses_batch_size_zero():
    # Regression (issue 25): batch_size=0 reached range(0, n, 0) and failed with "range()
    # arg 3 must not be zero"; n_samples likewise.
    with expect_error_naming("batch_size"):
        evaluate(MODEL, ACTION, 8, batch_size=0)
    with expect_error_naming("n_samples"):
        evaluate(MODEL, ACTION, 0)
    with expect_error_naming("n_samples"):
        evaluate(MODEL, ACTION, 8.0)


@BOUNDARY
@given(generator=st.sampled_from([0, "cpu", torch.default_generator.get_state()]))
def test_evaluate_refuses_a_generator_that_is_not_one(generator):
    refuses(evaluate, "generator", MODEL, ACTION, 8, generator=generator)


@BOUNDARY
@given(n=st.integers(2, 40), batch_size=st.integers(1, 50), seed=st.integers(0, 99))
def test_evaluate_edge_cases_are_finite(n, batch_size, seed):
    result = evaluate(
        MODEL, ACTION, n, batch_size=batch_size, generator=torch.Generator().manual_seed(seed)
    )
    assert result["n"] == n and 0 < result["ess"] <= 1 and 0 <= result["acceptance"] <= 1
    assert_finite(result)


@BOUNDARY
@given(
    kwargs=st.one_of(
        st.builds(lambda v: {"n_steps": v}, bad_integers(1)),
        st.builds(lambda v: {"n_eval": v}, bad_integers(2)),
        st.builds(lambda v: {"lr": v}, bad_reals(0, low_open=True)),
        st.builds(lambda v: {"batch_size": v}, bad_integers(1)),
        st.builds(lambda v: {"seed": v}, st.integers(max_value=-1)),
        st.builds(lambda v: {"device": v}, st.sampled_from(["tpu", 3, None, "cuda:x"])),
        st.builds(lambda v: {"local": v}, st.sampled_from([3, "heatbath"])),
    )
)
def test_train_and_evaluate_refuses_bad_arguments_before_moving_the_model(kwargs):
    model = MODEL
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = {"n_steps": 2, **kwargs}
    argument = next(iter(kwargs))
    refuses(train_and_evaluate, argument, model, ACTION, **args)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_train_and_evaluate_refuses_a_bad_n_local_with_a_local_sampler():
    with expect_error_naming("n_local"):
        train_and_evaluate(MODEL, ACTION, 2, local=LocalMetropolis(ACTION), n_local=-1)


def test_train_and_evaluate_short_run_is_finite():
    model, trainer, metrics = train_and_evaluate(_model(), ACTION, 2, batch_size=4, n_eval=16)
    assert trainer.step == 2 and metrics["n"] == 16
    assert_finite(metrics)


@BOUNDARY
@given(target=st.one_of(bad_reals(0, 1), st.sampled_from([0.0, 1.0])))
def test_train_to_acceptance_refuses_a_bad_target(target):
    trainer = Trainer(MODEL, ACTION, TrainConfig(n_steps=1))
    refuses(train_to_acceptance, "target", trainer, target)


@BOUNDARY
@given(
    kwargs=st.one_of(
        st.builds(lambda v: {"check_every": v}, bad_integers(1)),
        st.builds(lambda v: {"n_samples": v}, bad_integers(2)),
        st.builds(lambda v: {"generator": v}, st.sampled_from([1, "cpu"])),
        st.builds(lambda v: {"log": v}, st.sampled_from([1, "print"])),
    )
)
def test_train_to_acceptance_refuses_bad_arguments_before_training(kwargs):
    trainer = Trainer(MODEL, ACTION, TrainConfig(n_steps=1))
    refuses(train_to_acceptance, next(iter(kwargs)), trainer, 0.5, **kwargs)
    assert trainer.step == 0


@BOUNDARY
@given(trainer=st.sampled_from([None, MODEL, "trainer"]))
def test_train_to_acceptance_refuses_a_trainer_that_is_not_one(trainer):
    refuses(train_to_acceptance, "trainer", trainer, 0.5)


def test_train_to_acceptance_short_run_is_finite():
    trainer = Trainer(_model(), ACTION, TrainConfig(n_steps=2, batch_size=4, log_every=1))
    checks = train_to_acceptance(
        trainer, 0.999, check_every=1, n_samples=8, generator=torch.Generator().manual_seed(0)
    )
    assert trainer.step == 2
    assert_finite([c["acceptance"] for c in checks])


# ============================================================== notebooks: record


@pytest.fixture
def no_record_file(monkeypatch):
    monkeypatch.delenv(nbrun.RECORD_ENV, raising=False)
    monkeypatch.setattr(nbrun, "_recorded", {})


@BOUNDARY
@given(name=st.sampled_from(["", "  ", 3, None, b"x", ("a",)]))
def test_record_refuses_a_bad_name(no_record_file, name):
    refuses(record, "name", name, 1.0)
    assert recorded() == {}


@BOUNDARY
@given(
    value=st.sampled_from(
        [{"a": 1}, object(), list(range(1001)), [[0.0] * 40] * 40, torch.zeros(40, 40), 1 + 2j]
    )
)
def test_record_refuses_a_bad_value(no_record_file, value):
    refuses(record, "value", "x", value)
    assert recorded() == {}


@BOUNDARY
@given(
    value=st.one_of(
        st.floats(),
        st.integers(),
        st.booleans(),
        st.none(),
        st.text(max_size=5),
        st.lists(st.floats(), max_size=5),
    )
)
def test_record_keeps_what_it_is_given_with_non_finite_as_null(no_record_file, value):
    assert record("x", value) is value
    kept = recorded()["x"]
    assert json.dumps(kept, allow_nan=False)  # plain JSON: NaN and inf became null
    assert recorded() is not recorded()  # a copy


# ============================================================== notebooks: run_notebooks


@pytest.fixture
def toy_dir(tmp_path):
    import nbformat

    folder = tmp_path / "nbs"
    folder.mkdir()
    for name in ("01_toy.ipynb", "02_other.ipynb"):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("mode = 'fast'\ndevice = 'auto'")
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
        nbformat.write(nb, folder / name)
    return folder


@pytest.fixture
def never_execute(monkeypatch):
    """A run that got past validation would start a kernel: fail loudly instead."""

    def execute(*args, **kwargs):
        raise AssertionError("a notebook was started")

    monkeypatch.setattr(nbrun, "_execute", execute)


def _refuses_before_running(toy_dir, argument, **kwargs):
    out = kwargs.pop("out", toy_dir.parent / "out")
    err = refuses(run_notebooks, argument, out=out, notebooks_dir=toy_dir, progress=False, **kwargs)
    assert isinstance(err, ValueError)  # the CLI turns ValueErrors into usage errors
    assert not (toy_dir.parent / "out").exists()
    return err


@BOUNDARY
@given(
    only=st.one_of(
        st.sampled_from([[1], 1, ["01", 2], [None], [], ["99"], ["01", "toy"], b"01", {"01": 1}]),
        st.lists(st.integers(), min_size=1, max_size=3),
    )
)
def test_run_notebooks_refuses_a_bad_only(toy_dir, never_execute, only):
    err = _refuses_before_running(toy_dir, "only", only=only)
    assert "01_toy" in str(err)  # the message lists what is accepted


def test_run_notebooks_refuses_an_int_only_naming_what_is_accepted(toy_dir, never_execute):
    # Regression (issue 25): only=[1] failed with "'int' object has no attribute
    # 'removesuffix'" from inside the selection.
    with expect_error_naming("only") as info:
        run_notebooks(only=[1], notebooks_dir=toy_dir, out=toy_dir.parent / "out")
    assert "'01'" in str(info.value) and "01_toy, 02_other" in str(info.value)


@BOUNDARY
@given(
    timeout=st.one_of(
        st.sampled_from(
            [
                0,
                -1,
                2.5,
                0.5,
                math.nan,
                math.inf,
                -math.inf,
                True,
                "60",
                [60],
                nbrun.MAX_TIMEOUT + 1,
                10**30,
                1e300,
            ]
        ),
        st.integers(max_value=0),
        st.floats(allow_nan=True).filter(
            lambda t: not (t == int(t) and t >= 1) if math.isfinite(t) else True
        ),
    )
)
def test_run_notebooks_refuses_a_bad_timeout(toy_dir, never_execute, timeout):
    _refuses_before_running(toy_dir, "timeout", timeout=timeout)


def test_run_notebooks_timeout_must_be_a_positive_whole_number_of_seconds(toy_dir, never_execute):
    # Regression (issue 25): --timeout 2.5 made every notebook fail with a traitlets error
    # (nbclient's timeout is an integer), and 0 or -1 meant "no limit" there.
    for timeout in (2.5, 0, -1):
        with expect_error_naming("timeout"):
            run_notebooks(timeout=timeout, notebooks_dir=toy_dir, out=toy_dir.parent / "out")
    assert nbrun._check_timeout(60.0) == 60 and nbrun._check_timeout(None) is None


@BOUNDARY
@given(jobs=bad_integers(1))
def test_run_notebooks_refuses_bad_jobs(toy_dir, never_execute, jobs):
    _refuses_before_running(toy_dir, "jobs", jobs=jobs)


@BOUNDARY
@given(
    mode=st.one_of(
        st.text(max_size=5).filter(lambda m: m not in nbrun.MODES),
        st.sampled_from([None, 1, ["fast"]]),
    )
)
def test_run_notebooks_refuses_a_bad_mode(toy_dir, never_execute, mode):
    _refuses_before_running(toy_dir, "mode", mode=mode)


@BOUNDARY
@given(
    device=st.one_of(
        st.text(max_size=5).filter(lambda d: d not in nbrun.DEVICES),
        st.sampled_from([None, 0, torch.device("cpu")]),
    )
)
def test_run_notebooks_refuses_a_bad_device(toy_dir, never_execute, device):
    _refuses_before_running(toy_dir, "device", device=device)


@BOUNDARY
@given(
    params=st.sampled_from(
        [
            3,
            ["seed"],
            {"not an identifier": 1},
            {1: 2},
            {"mode": "full"},
            {"device": "cpu"},
            {"seed": object()},
            {"x": torch.zeros(2)},
        ]
    )
)
def test_run_notebooks_refuses_bad_extra_parameters(toy_dir, never_execute, params):
    _refuses_before_running(toy_dir, "extra_parameters", extra_parameters=params)


def test_run_notebooks_refuses_a_bad_out(toy_dir, never_execute, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for out in (None, 3, "", a_file, a_file / "below", toy_dir, "a\0b"):
        with expect_error_naming("out"):
            run_notebooks(out=out, notebooks_dir=toy_dir, progress=False)
    assert a_file.read_text() == "x"


@BOUNDARY
@given(folder=st.sampled_from([None, 3, "", b"nbs"]))
def test_find_notebooks_refuses_a_bad_notebooks_dir(folder):
    refuses(find_notebooks, "notebooks_dir", folder)


def test_find_notebooks_lists_numbered_notebooks_and_refuses_a_file(toy_dir):
    assert [p.name for p in find_notebooks(toy_dir)] == ["01_toy.ipynb", "02_other.ipynb"]
    with expect_error_naming("notebooks_dir"):
        find_notebooks(toy_dir / "01_toy.ipynb")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_notebooks(toy_dir / "missing")


# ============================================================== report

METRICS = {
    "01_phi4_real_nvp": {"ess": 0.6, "acceptance": None},
    "_meta": {"01_phi4_real_nvp": {"wall_s": 1.5, "mode": "fast", "device": "cpu", "status": "ok"}},
}


@BOUNDARY
@given(
    kwargs=st.one_of(
        st.builds(lambda v: {"figure": v}, st.sampled_from([None, 3, "", "  "])),
        st.builds(lambda v: {"kind": v}, st.sampled_from([">", "<=", None, 1, [">="]])),
        st.builds(lambda v: {"bound": v}, bad_reals()),
        st.builds(lambda v: {"why": v}, st.sampled_from([None, 3])),
    )
)
def test_target_refuses_bad_fields(kwargs):
    args = {"figure": "ess", "kind": ">=", "bound": 0.5, **kwargs}
    refuses(Target, next(iter(kwargs)) if "kind" not in kwargs else "kind", **args)


@BOUNDARY
@given(value=st.one_of(st.floats(), st.integers(), st.none(), st.text(max_size=3)))
def test_target_met_by_any_value_is_a_bool(value):
    target = Target("ess", ">=", 0.5)
    assert target.met_by(value) is (
        isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.5
    )


@BOUNDARY
@given(
    kwargs=st.one_of(
        st.builds(lambda v: {"notebook": v}, st.sampled_from([None, 3])),
        st.builds(lambda v: {"target": v}, st.sampled_from([None, "ess"])),
        st.builds(lambda v: {"ok": v}, st.sampled_from([None, 1, "yes"])),
    )
)
def test_target_check_refuses_bad_fields(kwargs):
    args = {
        "notebook": "01",
        "target": Target("ess", ">=", 0.5),
        "value": 0.6,
        "ok": True,
        **kwargs,
    }
    refuses(TargetCheck, next(iter(kwargs)), **args)


BAD_METRICS = [
    None,
    [],
    "metrics.json",
    {"_meta": []},
    {"_meta": {"01": 3}},
    {"_meta": {"01": {"wall_s": "fast"}}},
    {"_meta": {"01": {"wall_s": math.nan}}},
    {"_meta": {"01": {}}, "01": [1.0]},
]


@BOUNDARY
@given(metrics=st.sampled_from(BAD_METRICS))
def test_check_targets_and_render_report_refuse_bad_metrics(metrics):
    refuses(check_targets, "metrics", metrics)
    refuses(render_report, "metrics", metrics)


@BOUNDARY
@given(targets=st.sampled_from([3, {"01": "ess"}, {"01": [3]}, {1: ()}]))
def test_check_targets_refuses_bad_targets(targets):
    refuses(check_targets, "targets", METRICS, targets)


@BOUNDARY
@given(title=st.sampled_from([None, 3, ["GPU run"]]))
def test_render_report_refuses_a_bad_title(title):
    refuses(render_report, "title", METRICS, title)


def test_render_report_and_check_targets_on_a_minimal_run():
    checks = check_targets(METRICS)
    assert {c.target.figure: c.ok for c in checks}["ess"] is True
    text = render_report(METRICS)
    assert "01_phi4_real_nvp" in text and "Targets met" in text


@pytest.fixture
def metrics_file(tmp_path) -> Path:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(METRICS))
    return path


@BOUNDARY
@given(
    date=st.sampled_from(
        ["2024-13-01", "2024-02-30", "../../etc", "20240101", 20240101, "2024-1-1", ""]
    )
)
def test_write_report_refuses_a_bad_date(metrics_file, date):
    out = metrics_file.parent / "reports"
    refuses(write_report, "date", metrics_file, out, date=date)
    assert not out.exists()


@BOUNDARY
@given(gpu=st.sampled_from(["", "  ", 3, ["H100"]]))
def test_write_report_refuses_a_bad_gpu(metrics_file, gpu):
    refuses(write_report, "gpu", metrics_file, metrics_file.parent / "reports", gpu=gpu)


def test_write_report_refuses_bad_paths_and_files(metrics_file, tmp_path):
    for path in (None, 3, ""):
        with expect_error_naming("metrics_path"):
            write_report(path, tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        write_report(tmp_path / "missing.json", tmp_path / "r")
    for text in ("not json", "[1, 2]", '{"_meta": {"01": {"wall_s": "x"}}}'):
        broken = tmp_path / "broken.json"
        broken.write_text(text)
        with expect_error_naming("metrics_path"):
            write_report(broken, tmp_path / "r")
    for out in (None, 3, metrics_file, metrics_file / "below"):
        with expect_error_naming("out_dir"):
            write_report(metrics_file, out)
    report = write_report(metrics_file, tmp_path / "r", date="2024-01-02", gpu="NVIDIA H100")
    assert report.name == "2024-01-02-h100.md" and report.exists()
