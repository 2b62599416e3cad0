"""Checkpoints: round trip, atomic writes, and clear errors for corrupted or mismatched files."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from lqft_lab.actions import Phi4Action
from lqft_lab.flows import RealNVPConfig, build_real_nvp
from lqft_lab.io import load_checkpoint, pretrained_path, read_metadata, save_checkpoint


@pytest.fixture
def saved(tmp_path):
    model = build_real_nvp(L=4, n_layers=2, hidden=(4,), seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # not the seed's initialisation: loading must restore these values
    path = save_checkpoint(
        tmp_path / "m.safetensors",
        model,
        Phi4Action(-4.0, 8.0),
        steps=7,
        seed=3,
        metrics={"ess": 0.25},
    )
    return model, path


def test_round_trip_restores_outputs_and_metadata(saved):
    model, path = saved
    loaded, meta = load_checkpoint(
        path, action=Phi4Action(-4.0, 8.0), architecture=RealNVPConfig(L=4, n_layers=2, hidden=(4,))
    )
    z = torch.randn(3, 4, 4)
    assert torch.equal(loaded.flow(z)[0], model.flow(z)[0])
    assert meta["steps"] == 7 and meta["metrics"] == {"ess": 0.25}
    assert meta["action"] == {"name": "Phi4Action", "m2": -4.0, "lam": 8.0}
    assert read_metadata(path) == meta
    assert not loaded.training


def test_write_is_atomic_and_leaves_no_temporary_files(saved, tmp_path):
    model, path = saved
    save_checkpoint(path, model, Phi4Action(-4.0, 8.0))  # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


def test_mismatched_action_or_architecture(saved):
    _, path = saved
    with pytest.raises(ValueError, match="action does not match.*lam"):
        load_checkpoint(path, action=Phi4Action(-4.0, 6.0))
    with pytest.raises(ValueError, match="architecture does not match.*n_layers"):
        load_checkpoint(path, architecture=RealNVPConfig(L=4, n_layers=4, hidden=(4,)))


def test_corrupted_files_are_clear_errors(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupted|not a readable"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="not an lqft_lab checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_tensors_that_do_not_fit_the_architecture(saved, tmp_path):
    _, path = saved
    meta = read_metadata(path)
    meta["architecture"]["hidden"] = [6]  # header claims another width than the tensors have
    bad = tmp_path / "bad.safetensors"
    model = build_real_nvp(L=4, n_layers=2, hidden=(4,))
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(bad),
        metadata={"lqft_lab": json.dumps(meta)},
    )
    with pytest.raises(ValueError, match="do not fit"):
        load_checkpoint(bad)


def test_unknown_pretrained_name_lists_available():
    with pytest.raises(FileNotFoundError, match="available"):
        pretrained_path("no_such_model")


@pytest.mark.parametrize("kind", ["sun_equivariant", "sun_single_matrix"])
def test_sun_flows_round_trip(tmp_path, kind):
    """SU(N) flows (complex links, real logJ) save and load like the others."""
    from lqft_lab.actions import SingleMatrixAction, SUNWilsonAction
    from lqft_lab.flows import (
        SingleMatrixFlowConfig,
        SUNFlowConfig,
        build_single_matrix_flow,
        build_sun_flow,
    )

    if kind == "sun_equivariant":
        config = SUNFlowConfig(L=4, N=2, n_layers=2, context_dim=2, hidden=(4,), mlp_hidden=(4,))
        model, action = build_sun_flow(config=config, seed=1), SUNWilsonAction(2.0, 2)
    else:
        config = SingleMatrixFlowConfig(N=3, n_bins=4, hidden=(8,))
        model, action = (
            build_single_matrix_flow(config=config, seed=1),
            SingleMatrixAction(9.0, (1.0,), 3),
        )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    path = save_checkpoint(tmp_path / "m.safetensors", model, action, steps=1)
    loaded, meta = load_checkpoint(path, action=action, architecture=config)
    assert meta["kind"] == kind
    z = loaded.prior.sample(3, generator=torch.Generator().manual_seed(3))
    x, logJ = model.flow(z)
    x2, logJ2 = loaded.flow(z)
    assert torch.equal(x, x2) and torch.equal(logJ, logJ2) and not logJ.is_complex()


def _drop_architecture_field(path, field):
    """Rewrite a checkpoint as one written before ``field`` existed."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    meta = json.loads(header["lqft_lab"])
    del meta["architecture"][field]
    save_file(load_file(str(path)), str(path), metadata={**header, "lqft_lab": json.dumps(meta)})


def test_gauge_flows_written_before_the_stripe_order_load_in_ascending_order(tmp_path):
    # Checkpoints written before `offset_step` existed hold no such field; their layers
    # stepped the stripe offsets up, and they must load that way, not in today's default.
    from lqft_lab.actions import U1WilsonAction
    from lqft_lab.flows import U1FlowConfig, build_u1_flow

    model = build_u1_flow(4, n_layers=8, hidden=(4,), offset_step=1, seed=1)
    path = save_checkpoint(tmp_path / "old.safetensors", model, U1WilsonAction(1.0), steps=1)
    _drop_architecture_field(path, "offset_step")

    assert read_metadata(path)["architecture"]["offset_step"] == 1
    loaded, _ = load_checkpoint(path)
    assert [layer.offset for layer in loaded.flow.layers[::2]] == [0, 1, 2, 3]
    z = loaded.prior.sample(3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loaded.flow(z), model.flow(z))
    with pytest.raises(ValueError, match="offset_step"):  # not today's default architecture
        load_checkpoint(path, architecture=U1FlowConfig(L=4, n_layers=8, hidden=(4,)))


def test_spectral_prior_round_trip_and_older_files_without_the_field(tmp_path):
    model = build_real_nvp(L=4, n_layers=2, hidden=(4,), spectral_prior=True, seed=3)
    with torch.no_grad():
        for p in model.prior.parameters():
            p.add_(0.1)  # a trained-looking spectrum, not the identity start
    path = save_checkpoint(tmp_path / "s.safetensors", model, Phi4Action(-4.0, 8.0), steps=1)
    loaded, meta = load_checkpoint(path, architecture=model.config)
    assert meta["architecture"]["spectral_prior"] is True
    x = torch.randn(3, 4, 4)
    assert torch.equal(loaded.log_prob(x), model.log_prob(x))
    with pytest.raises(ValueError, match="spectral_prior"):
        load_checkpoint(path, architecture=RealNVPConfig(L=4, n_layers=2, hidden=(4,)))
    # the shipped flows were written before the field existed: they read as white-noise priors
    assert (
        read_metadata(pretrained_path("phi4_L8_m2-4_lam8"))["architecture"]["spectral_prior"]
        is False
    )


@pytest.mark.parametrize("field", ["loops_2x1", "line_rotations"])
def test_u1_optional_parts_round_trip_and_older_files_without_the_field(tmp_path, field):
    from lqft_lab.actions import U1WilsonAction
    from lqft_lab.flows import U1FlowConfig, build_u1_flow

    model = build_u1_flow(4, n_layers=8, hidden=(4,), seed=2, **{field: True})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # away from the identity start, so the new part matters
    path = save_checkpoint(tmp_path / "u.safetensors", model, U1WilsonAction(2.0), steps=1)
    loaded, meta = load_checkpoint(path, architecture=model.config)
    assert meta["architecture"][field] is True
    z = model.prior.sample(3, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(loaded.flow(z), model.flow(z))
    with pytest.raises(ValueError, match=field):
        load_checkpoint(path, architecture=U1FlowConfig(L=4, n_layers=8, hidden=(4,)))
    # files written before the field existed: plaquette couplings that see plaquettes only
    plain = build_u1_flow(4, n_layers=8, hidden=(4,), seed=6)
    old = save_checkpoint(tmp_path / "old.safetensors", plain, U1WilsonAction(2.0), steps=1)
    _drop_architecture_field(old, field)
    assert read_metadata(old)["architecture"][field] is False
    loaded, _ = load_checkpoint(old)
    assert getattr(loaded.config, field) is False and len(loaded.flow.layers) == 8
    torch.testing.assert_close(loaded.flow(z), plain.flow(z))
