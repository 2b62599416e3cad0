"""Checkpoints of trained flows, and the registry of pretrained models in ``data/``.

A checkpoint is ONE safetensors file: the model's tensors plus a JSON header entry
``"lqft_lab"`` holding everything needed to rebuild and check it::

    {"format": 1, "kind": "real_nvp", "architecture": {...RealNVPConfig...},
     "action": {"name": "Phi4Action", "m2": -4.0, "lam": 8.0},
     "steps": 20000, "seed": 0, "train": {...TrainConfig...}, "metrics": {...}}

Files are written atomically (temporary file in the same folder, then ``os.replace``), so a
crash never leaves half a checkpoint under the final name. Loading never executes code
(safetensors holds tensors only) and fails with a ``ValueError`` that says what is wrong:
a corrupted or foreign file, an architecture or action that does not match what the caller
expects.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .flows.realnvp import RealNVPConfig, build_real_nvp
from .flows.sun import SingleMatrixFlowConfig, build_single_matrix_flow
from .flows.sun_lattice import SUNFlowConfig, build_sun_flow
from .flows.u1 import U1FlowConfig, build_u1_flow

__all__ = ["save_checkpoint", "load_checkpoint", "read_metadata", "pretrained_path", "DATA_DIR"]

FORMAT_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# kind → (config class, builder(config) -> model). A model's kind is found from the type of
# its ``config``: real NVP flows for scalar fields, gauge-equivariant flows for U(1) and
# SU(N) links, spectral flows for single SU(N) matrices.
_BUILDERS = {
    "real_nvp": (RealNVPConfig, build_real_nvp),
    "u1_equivariant": (U1FlowConfig, lambda config: build_u1_flow(config=config)),
    "sun_equivariant": (SUNFlowConfig, lambda config: build_sun_flow(config=config)),
    "sun_single_matrix": (
        SingleMatrixFlowConfig,
        lambda config: build_single_matrix_flow(config=config),
    ),
}


# Gauge-equivariant kinds whose layers step through stripe offsets (``offset_step``).
_STRIPE_KINDS = ("u1_equivariant", "sun_equivariant")


def _kind_of(config) -> str | None:
    for kind, (config_cls, _) in _BUILDERS.items():
        if type(config) is config_cls:
            return kind
    return None


def _action_record(action) -> dict:
    if not hasattr(action, "params"):
        raise TypeError(f"cannot record action {action!r}: it has no params() method")
    return {"name": type(action).__name__, **action.params()}


def save_checkpoint(path, model, action, **extra) -> Path:
    """Write ``model`` (with its action and any JSON-able ``extra`` fields) atomically.

    Args:
        path: target file, conventionally ``*.safetensors``.
        model: a flow built by :func:`~lqft_lab.flows.build_real_nvp` or
            :func:`~lqft_lab.flows.build_u1_flow` (it carries ``config``).
        action: the action it was trained for (recorded with its couplings).
        extra: e.g. ``steps=``, ``seed=``, ``train=config.to_dict()``, ``metrics={...}``.
    """
    config = getattr(model, "config", None)
    kind = _kind_of(config)
    if kind is None:
        raise TypeError(
            "only models built by build_real_nvp or build_u1_flow (with a .config) can be saved"
        )
    meta = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "architecture": config.to_dict(),
        "action": _action_record(action),
        **extra,
    }
    header = {"lqft_lab": json.dumps(meta, sort_keys=True)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_metadata(path) -> dict:
    """Return a checkpoint's ``lqft_lab`` metadata without loading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors checkpoint ({err})") from err
    if "lqft_lab" not in header:
        raise ValueError(f"{path} is a safetensors file but not an lqft_lab checkpoint")
    try:
        meta = json.loads(header["lqft_lab"])
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} has corrupted lqft_lab metadata ({err})") from err
    if meta.get("format") != FORMAT_VERSION or meta.get("kind") not in _BUILDERS:
        raise ValueError(
            f"{path} has checkpoint format {meta.get('format')!r} / kind {meta.get('kind')!r}; "
            f"this version of lqft_lab reads format {FORMAT_VERSION} of {sorted(_BUILDERS)}"
        )
    if meta["kind"] in _STRIPE_KINDS and isinstance(meta.get("architecture"), dict):
        # Written before the stripe order was a choice: those flows stepped their offsets up.
        meta["architecture"].setdefault("offset_step", 1)
    if meta["kind"] == "u1_equivariant" and isinstance(meta.get("architecture"), dict):
        # Written before the 2×1 loops were a choice: those conditioners see plaquettes only.
        meta["architecture"].setdefault("loops_2x1", False)
        # Written before the line rotations existed: plaquette couplings only.
        meta["architecture"].setdefault("line_rotations", False)
    if meta["kind"] == "real_nvp" and isinstance(meta.get("architecture"), dict):
        # Written before the prior was a choice: those flows start from N(0, 1).
        meta["architecture"].setdefault("spectral_prior", False)
    return meta


def _check_match(what: str, found: dict, expected: dict, path: Path) -> None:
    diffs = [
        f"{key}: checkpoint has {found.get(key)!r}, expected {value!r}"
        for key, value in expected.items()
        if found.get(key) != value
    ]
    if diffs:
        raise ValueError(f"{path}: {what} does not match ({'; '.join(diffs)})")


def load_checkpoint(path, action=None, architecture=None, device="cpu"):
    """Rebuild a model from a checkpoint, checking it against what the caller expects.

    Args:
        path: checkpoint file.
        action: if given, its name and couplings must equal those recorded.
        architecture: a :class:`RealNVPConfig`, :class:`U1FlowConfig`,
            :class:`SUNFlowConfig` or :class:`SingleMatrixFlowConfig` (or a dict of the
            recorded kind's fields) that must match.
        device: where to put the model.

    Returns:
        ``(model, meta)``, the model in eval mode.

    Raises:
        ValueError: corrupted file, wrong format, or a mismatch with ``action`` /
            ``architecture``.
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    meta = read_metadata(path)
    config_cls, builder = _BUILDERS[meta["kind"]]
    if action is not None:
        _check_match("the action", meta.get("action", {}), _action_record(action), path)
    if architecture is not None:
        wanted = _kind_of(architecture) if hasattr(architecture, "to_dict") else meta["kind"]
        if wanted != meta["kind"]:
            raise ValueError(
                f"{path}: the architecture does not match (checkpoint holds a {meta['kind']} "
                f"flow, expected {wanted or type(architecture).__name__})"
            )
        expected = architecture.to_dict() if hasattr(architecture, "to_dict") else architecture
        expected = config_cls(**expected).to_dict()
        _check_match("the architecture", meta["architecture"], expected, path)
    try:
        model = builder(config_cls(**meta["architecture"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path} records an invalid architecture ({err})") from err
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is a corrupted checkpoint ({err})") from err
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: tensors do not fit the recorded architecture ({err})") from err
    model.eval()
    return model.to(device), meta


def pretrained_path(name: str) -> Path:
    """Path of a pretrained model shipped in ``data/models`` (listed in ``data/README.md``)."""
    path = DATA_DIR / "models" / f"{name}.safetensors"
    if not path.is_file():
        available = sorted(p.stem for p in (DATA_DIR / "models").glob("*.safetensors"))
        raise FileNotFoundError(f"no pretrained model {name!r}; available: {available}")
    return path
