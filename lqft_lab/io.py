"""Checkpoints of trained flows, and the registry of pretrained models in ``data/``.

A checkpoint is ONE safetensors file: the model's tensors plus a JSON header entry
``"lqft_lab"`` holding everything needed to rebuild and check it::

    {"format": 1, "kind": "real_nvp", "architecture": {...RealNVPConfig...},
     "action": {"name": "Phi4Action", "m2": -4.0, "lam": 8.0},
     "steps": 20000, "seed": 0, "train": {...TrainConfig...}, "metrics": {...}}

Files are written atomically (temporary file in the same folder, then ``os.replace``), so a
crash never leaves half a checkpoint under the final name. Loading never executes code
(safetensors holds tensors only) and fails with a ``ValueError`` that names the file and says
what is wrong: a corrupted or foreign file, metadata that breaks the schema below, tensors
that do not fit the recorded architecture, non-finite weights, masks other than the ones the
architecture defines, an architecture or action that does not match what the caller expects.

**Order of the checks** (nothing is built from a file before it is known to fit): the JSON
metadata against its schema (:data:`SCHEMA`; ``architecture`` must name every field of its
kind's config and no other); the config's own checks; the number of tensors the architecture
implies against the number in the file's header; their names and shapes against a
shape-only model on the ``meta`` device (no memory); then the tensors themselves (finite
float32/float64; buffers such as checkerboard masks exactly as the architecture defines
them); only then the model is built and loaded. A header that claims two million layers
over a file of a few tensors is refused at the count, in microseconds.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from . import checks
from .flows.base import FlowModel
from .flows.pseudofermion import PseudofermionFlow, PseudofermionFlowConfig
from .flows.realnvp import RealNVPConfig, build_real_nvp
from .flows.sun import SingleMatrixFlowConfig, build_single_matrix_flow
from .flows.sun_lattice import SUNFlowConfig, build_sun_flow
from .flows.u1 import U1FlowConfig, build_u1_flow

__all__ = ["save_checkpoint", "load_checkpoint", "read_metadata", "pretrained_path", "DATA_DIR"]

FORMAT_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# kind → (config class, builder(config) -> model). A model's kind is found from the type of
# its ``config``: real NVP flows for scalar fields, gauge-equivariant flows for U(1) and
# SU(N) links, spectral flows for single SU(N) matrices, and the conditional flows
# ``q(φ | θ)`` of a pseudofermion given U(1) links.
_BUILDERS = {
    "real_nvp": (RealNVPConfig, build_real_nvp),
    "u1_equivariant": (U1FlowConfig, lambda config: build_u1_flow(config=config)),
    "sun_equivariant": (SUNFlowConfig, lambda config: build_sun_flow(config=config)),
    "sun_single_matrix": (
        SingleMatrixFlowConfig,
        lambda config: build_single_matrix_flow(config=config),
    ),
    "pseudofermion": (PseudofermionFlowConfig, PseudofermionFlow.from_config),
}


# Gauge-equivariant kinds whose layers step through stripe offsets (``offset_step``).
_STRIPE_KINDS = ("u1_equivariant", "sun_equivariant")

#: The metadata schema: key -> (accepted JSON types, required). Other keys are free
#: (``extra`` fields of :func:`save_checkpoint`).
SCHEMA: dict[str, tuple[tuple[type, ...], bool]] = {
    "format": ((int,), True),
    "kind": ((str,), True),
    "architecture": ((dict,), True),
    "action": ((dict,), False),
    "steps": ((int,), False),
    "seed": ((int, type(None)), False),
    "train": ((dict,), False),
    "metrics": ((dict,), False),
}
_RESERVED = ("format", "kind", "architecture", "action")


def _mlp_tensors(n_in: int, hidden) -> int:
    # flows.sun._MLP: a learned constant without inputs, else weight and bias per Linear
    return 1 if n_in == 0 else 2 * (len(hidden) + 1)


def _tensor_count(kind: str, c) -> int:
    """How many tensors the ``state_dict`` of ``kind``'s model with config ``c`` holds.

    Computed from the config alone, before anything is built; ``tests/boundary`` checks it
    against built models of every kind and option.
    """
    if kind == "real_nvp":  # per layer: the mask, and a weight and a bias per convolution
        return c.n_layers * (1 + 2 * (len(c.hidden) + 1)) + (6 if c.spectral_prior else 0)
    if kind == "u1_equivariant":
        n_rotations = 4 * math.ceil(c.n_layers / 8) if c.line_rotations else 0
        return (c.n_layers + n_rotations) * 2 * (len(c.hidden) + 1)
    if kind == "sun_equivariant":
        mlps = c.n_blocks * (c.N - 1) * _mlp_tensors(c.N - 2 + c.context_dim, c.mlp_hidden)
        conditioner = 2 * (len(c.hidden) + 1) if c.context_dim else 0
        return c.n_layers * (mlps + conditioner)
    conv = 2 * (len(c.hidden) + 1)  # a weight and a bias per convolution
    if kind == "pseudofermion":  # three layers per block with a constant each, then pairs
        return 3 * c.n_blocks * (conv + 1) + 2 * c.couplings * conv
    return c.n_blocks * (c.N - 1) * _mlp_tensors(c.N - 2, c.hidden)  # sun_single_matrix


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
        model: a flow built by :func:`~lqft_lab.flows.build_real_nvp`,
            :func:`~lqft_lab.flows.build_u1_flow`, ``build_sun_flow`` or
            ``build_single_matrix_flow`` (it carries ``config``), or a
            :class:`~lqft_lab.flows.pseudofermion.PseudofermionFlow`.
        action: the action it was trained for (recorded with its couplings).
        extra: e.g. ``steps=``, ``seed=``, ``train=config.to_dict()``, ``metrics={...}``.

    Raises:
        TypeError: ``path`` is not a path, ``model`` not built by one of the builders,
            ``action`` without ``params()``, an ``extra`` value that is not JSON.
        ValueError: ``model`` holds NaN or ``inf`` weights (the file could not be loaded),
            or an ``extra`` field breaks the metadata schema.
    """
    path = _as_path(path)
    config = getattr(model, "config", None)
    kind = _kind_of(config)
    if kind is None or not isinstance(model, (FlowModel, PseudofermionFlow)):
        raise checks.ArgumentKindError(
            "model must be a flow built by build_real_nvp, build_u1_flow, build_sun_flow, "
            "build_single_matrix_flow (with its .config) or a PseudofermionFlow, got "
            f"{type(model).__name__}"
        )
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra fields may not replace {clash}: they are written from the model")
    for key, value in extra.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            raise checks.ArgumentKindError(f"{key} must be JSON-serialisable ({err})") from None
        if key in SCHEMA and not _schema_type_ok(value, SCHEMA[key][0]):
            raise ValueError(f"{key} must be {_type_names(SCHEMA[key][0])}, got {value!r:.80}")
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"model has non-finite weights in {name}: it cannot be saved")
    meta = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "architecture": config.to_dict(),
        "action": _action_record(action),
        **extra,
    }
    header = {"lqft_lab": json.dumps(meta, sort_keys=True)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
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


def _as_path(path) -> Path:
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise checks.ArgumentKindError(f"path must be a str or os.PathLike, got {path!r:.80}")
    return Path(path)


def _schema_type_ok(value, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:  # JSON true is not a step count
        return False
    return isinstance(value, types)


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", dict: "a JSON object", type(None): "null"}
    return " or ".join(names[t] for t in types)


def read_metadata(path) -> dict:
    """Return a checkpoint's ``lqft_lab`` metadata without loading its tensors.

    The metadata is checked against :data:`SCHEMA` and its ``architecture`` against the
    fields of its kind's config (older files' missing optional fields are filled in with the
    values those files were written with).

    Raises:
        TypeError: ``path`` is not a str or path.
        FileNotFoundError: no file at ``path``.
        ValueError: naming ``path``: not a safetensors file, not an lqft_lab checkpoint,
            metadata that is not a JSON object, or breaks the schema (a missing or mistyped
            key, an unknown format or kind, architecture fields missing or unknown).
    """
    path = _as_path(path)
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
    if not isinstance(meta, dict):
        raise ValueError(
            f"{path}: the lqft_lab metadata must be a JSON object, got a {type(meta).__name__}"
        )
    if meta.get("format") != FORMAT_VERSION or meta.get("kind") not in _BUILDERS:
        raise ValueError(
            f"{path} has checkpoint format {meta.get('format')!r} / kind {meta.get('kind')!r}; "
            f"this version of lqft_lab reads format {FORMAT_VERSION} of {sorted(_BUILDERS)}"
        )
    for key, (types, required) in SCHEMA.items():
        if key not in meta:
            if required:
                raise ValueError(f"{path}: the metadata lacks the required key {key!r}")
        elif not _schema_type_ok(meta[key], types):
            raise ValueError(
                f"{path}: metadata key {key!r} must be {_type_names(types)}, got {meta[key]!r:.80}"
            )
    action = meta.get("action")
    if action is not None and not isinstance(action.get("name"), str):
        raise ValueError(f"{path}: metadata key 'action' must name the action ('name': str)")
    arch = meta["architecture"]
    if meta["kind"] in _STRIPE_KINDS:
        # Written before the stripe order was a choice: those flows stepped their offsets up.
        arch.setdefault("offset_step", 1)
    if meta["kind"] == "u1_equivariant":
        # Written before the 2×1 loops were a choice: those conditioners see plaquettes only.
        arch.setdefault("loops_2x1", False)
        # Written before the line rotations existed: plaquette couplings only.
        arch.setdefault("line_rotations", False)
    if meta["kind"] == "real_nvp":
        # Written before the prior was a choice: those flows start from N(0, 1).
        arch.setdefault("spectral_prior", False)
    fields = set(_BUILDERS[meta["kind"]][0].__dataclass_fields__)
    missing, unknown = sorted(fields - set(arch)), sorted(set(arch) - fields)
    if missing or unknown:
        raise ValueError(
            f"{path}: the {meta['kind']} architecture in the metadata "
            + (f"lacks {missing}" if missing else "")
            + (" and " if missing and unknown else "")
            + (f"has unknown fields {unknown}" if unknown else "")
        )
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

    Nothing is built before the file is known to fit (module docstring): a header whose
    architecture does not match the tensors present is refused before any layer exists.

    Args:
        path: checkpoint file.
        action: if given, its name and couplings must equal those recorded.
        architecture: a :class:`RealNVPConfig`, :class:`U1FlowConfig`,
            :class:`SUNFlowConfig`, :class:`SingleMatrixFlowConfig` or
            :class:`PseudofermionFlowConfig` (or a dict of the recorded kind's fields) that
            must match.
        device: where to put the model.

    Returns:
        ``(model, meta)``, the model in eval mode.

    Raises:
        ValueError: naming ``path``: corrupted file, metadata that breaks the schema, an
            invalid architecture, tensors that do not fit it (count, names, shapes), weights
            that are not finite float32/float64, masks other than the architecture's, or a
            mismatch with ``action`` / ``architecture``; also a ``device`` that does not
            exist here.
        TypeError: ``path``, ``device`` or ``architecture`` of the wrong kind, an ``action``
            without ``params()``.
        FileNotFoundError: no file at ``path``.
    """
    path = _as_path(path)
    device = checks.torch_device("device", device)
    expected_action = _action_record(action) if action is not None else None
    meta = read_metadata(path)
    kind = meta["kind"]
    config_cls, builder = _BUILDERS[kind]
    if expected_action is not None:
        _check_match("the action", meta.get("action") or {}, expected_action, path)
    try:
        config = config_cls(**meta["architecture"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path} records an invalid architecture ({err})") from err
    if architecture is not None:
        _check_architecture(architecture, kind, config_cls, meta, path)

    header = _tensor_header(path)
    n_expected = _tensor_count(kind, config)
    if n_expected != len(header):
        raise ValueError(
            f"{path}: tensors do not fit the recorded architecture (it implies {n_expected} "
            f"tensors, the file holds {len(header)}); refused before building anything"
        )
    with torch.device("meta"):  # names and shapes only, no memory
        shapes = {k: tuple(v.shape) for k, v in builder(config).state_dict().items()}
    _check_shapes(shapes, header, path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is a corrupted checkpoint ({err})") from err
    for name, t in tensors.items():
        if t.dtype not in checks.REAL_DTYPES:
            raise ValueError(f"{path}: tensor {name} is {t.dtype}, not float32 or float64")
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise ValueError(f"{path}: tensor {name} holds {bad} NaN or infinite entries")

    model = builder(config)
    state = model.state_dict()
    parameters = {k for k, _ in model.named_parameters()}
    for name, buffer in state.items():
        if name not in parameters and not torch.equal(tensors[name].to(buffer.dtype), buffer):
            what = "mask" if name.endswith(".mask") else "buffer"
            raise ValueError(
                f"{path}: {what} {name} differs from the one the architecture defines (a "
                "coupling mask must hold exactly 0 and 1 in its checkerboard pattern, or the "
                "flow is not invertible)"
            )
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: tensors do not fit the recorded architecture ({err})") from err
    model.eval()
    return model.to(device), meta


def _check_architecture(architecture, kind: str, config_cls, meta: dict, path: Path) -> None:
    if hasattr(architecture, "to_dict"):
        wanted = _kind_of(architecture)
        if wanted != kind:
            raise ValueError(
                f"{path}: the architecture does not match (checkpoint holds a {kind} "
                f"flow, expected {wanted or type(architecture).__name__})"
            )
        expected = architecture.to_dict()
    elif isinstance(architecture, dict):
        try:
            expected = config_cls(**architecture).to_dict()
        except TypeError as err:
            raise checks.ArgumentKindError(f"architecture is not a {kind} config ({err})") from None
        except ValueError as err:
            raise ValueError(f"architecture is not a valid {kind} config ({err})") from None
    else:
        raise checks.ArgumentKindError(
            f"architecture must be a flow config or a dict of its fields, got "
            f"{type(architecture).__name__}"
        )
    _check_match("the architecture", meta["architecture"], expected, path)


def _tensor_header(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a safetensors file's tensors, from its header alone."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is a corrupted checkpoint ({err})") from err


def _check_shapes(expected: dict, found: dict, path: Path) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k}: file {found[k]}, architecture {expected[k]}"
        for k in expected
        if k in found and tuple(found[k]) != expected[k]
    ]
    if missing or unexpected or wrong:
        parts = [
            f"missing {missing[:3]}" if missing else "",
            f"unexpected {unexpected[:3]}" if unexpected else "",
            "; ".join(wrong[:3]),
        ]
        raise ValueError(
            f"{path}: tensors do not fit the recorded architecture "
            f"({'; '.join(p for p in parts if p)})"
        )


def pretrained_path(name: str) -> Path:
    """Path of a pretrained model shipped in ``data/models`` (listed in ``data/README.md``).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: ``name`` is empty or holds a path separator.
        FileNotFoundError: no such model, listing the available ones.
    """
    if not isinstance(name, str):
        raise checks.ArgumentKindError(f"name must be a model name (str), got {name!r:.80}")
    if not name or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise ValueError(f"name must be a plain model name such as 'u1_L8_b2', got {name!r}")
    path = DATA_DIR / "models" / f"{name}.safetensors"
    if not path.is_file():
        available = sorted(p.stem for p in (DATA_DIR / "models").glob("*.safetensors"))
        raise FileNotFoundError(f"no pretrained model {name!r}; available: {available}")
    return path
