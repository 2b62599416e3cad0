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
            "--hidden",
            "4,6",
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
    assert model.config.n_layers == 2 and tuple(model.config.hidden) == (4, 6)
    assert meta["steps"] == 20 and meta["metrics"]["ess_samples"] == 16384
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


def test_train_command_transfers_and_stops_at_the_target_acceptance(tmp_path, capsys):
    first = tmp_path / "L4.safetensors"
    common = ["--layers", "2", "--m2", "1.0", "--lam", "0.0", "--device", "cpu"]
    assert main(["train", "--L", "4", "--steps", "20", *common, "--out", str(first)]) == 0
    second = tmp_path / "L6.safetensors"
    args = ["train", "--L", "6", "--init", str(first), "--steps", "2000", "--lr", "5e-3"]
    args += ["--target-acceptance", "0.4", "--check-every", "50"]
    args += ["--m2", "1.0", "--lam", "0.0", "--device", "cpu", "--out", str(second)]
    assert main(args) == 0
    model, meta = load_checkpoint(second, action=Phi4Action(1.0, 0.0))
    assert model.config.L == 6 and model.config.n_layers == 2
    assert meta["init"] == "L4.safetensors" and meta["target_acceptance"] == 0.4
    # stopped at the first check that met the target, long before the step budget
    assert meta["steps"] % 50 == 0 and meta["steps"] < 2000
    assert meta["metrics"]["acceptance"] > 0.3  # re-measured on 16384 fresh samples


def test_train_command_refuses_a_layer_count_that_contradicts_init(tmp_path, capsys):
    first = tmp_path / "L4.safetensors"
    common = ["--m2", "1.0", "--lam", "0.0", "--device", "cpu"]
    assert (
        main(["train", "--L", "4", "--layers", "2", "--steps", "5", *common, "--out", str(first)])
        == 0
    )
    rc = main(
        ["train", "--init", str(first), "--layers", "4", *common, "--out", str(tmp_path / "x")]
    )
    assert rc == 2
    assert "differs" in capsys.readouterr().err


def test_train_command_refuses_bad_or_contradicting_hidden_channels(tmp_path, capsys):
    common = ["--L", "4", "--layers", "2", "--m2", "1.0", "--lam", "0.0", "--device", "cpu"]
    for bad in ("a,b", "8,0", ""):
        assert main(["train", *common, "--hidden", bad, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --hidden takes positive channel counts") and "\n" not in err
    first = tmp_path / "L4.safetensors"
    assert main(["train", *common, "--steps", "5", "--out", str(first)]) == 0
    rc = main(
        ["train", *common, "--init", str(first), "--hidden", "16,16", "--out", str(tmp_path / "y")]
    )
    assert rc == 2
    assert "--hidden 16,16 differs" in capsys.readouterr().err


def test_train_command_spectral_prior_from_scratch_and_added_to_an_init(tmp_path, capsys):
    common = ["--layers", "2", "--hidden", "4", "--m2", "1.0", "--lam", "0.0", "--device", "cpu"]
    plain, fresh, added = (tmp_path / f"{n}.safetensors" for n in ("plain", "fresh", "added"))
    assert main(["train", "--L", "4", "--steps", "5", *common, "--out", str(plain)]) == 0
    assert (
        main(
            ["train", "--L", "4", "--steps", "5", *common, "--spectral-prior", "--out", str(fresh)]
        )
        == 0
    )
    assert load_checkpoint(fresh)[0].config.spectral_prior
    args = ["train", "--L", "6", "--init", str(plain), "--spectral-prior", "--steps", "5"]
    assert main([*args, *common, "--out", str(added)]) == 0
    model, meta = load_checkpoint(added)
    assert (
        model.config.spectral_prior and model.config.L == 6 and meta["init"] == "plain.safetensors"
    )
    # --init of a flow that has a spectral prior keeps it without the flag
    kept = tmp_path / "kept.safetensors"
    assert (
        main(
            ["train", "--L", "4", "--init", str(added), "--steps", "5", *common, "--out", str(kept)]
        )
        == 0
    )
    assert load_checkpoint(kept)[0].config.spectral_prior
