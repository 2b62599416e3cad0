"""The argument checks the study functions share, on top of :mod:`lqft_lab.checks`.

Each raises ``TypeError`` (wrong kind: :class:`~lqft_lab.checks.ArgumentKindError`, a
``ValueError`` too) or ``ValueError`` (bad value) with a sentence naming
the argument and the value, and returns the value in the form the study uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from .. import checks

__all__ = [
    "seed",
    "device",
    "generator",
    "flag",
    "chains_and_steps",
    "reals",
    "integers",
    "mapping",
    "instance",
]

#: seeds are offset by small integers (``seed + 1``, ``seed + L``) before they reach a
#: ``torch.Generator``, whose seeds are 64-bit: keep well inside that.
MAX_SEED = 2**62


def seed(name: str, value) -> int:
    """A seed: an integer in ``[0, 2**62]``."""
    return checks.integer(name, value, low=0, high=MAX_SEED)


def device(name: str, value) -> torch.device:
    """A ``torch.device`` (or its name) that exists here (:func:`checks.torch_device`)."""
    return checks.torch_device(name, value)


def generator(name: str, value, device=None) -> torch.Generator | None:
    """``None`` or a ``torch.Generator`` (:func:`checks.random_generator`)."""
    return checks.random_generator(name, value, device)


flag = checks.boolean  # a switch: True or False only


def chains_and_steps(name: str, value, min_steps: int = 2) -> tuple[int, int]:
    """``(chains, production steps)``: two integers, ``chains >= 1``, ``steps >= min_steps``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise checks.ArgumentKindError(
            f"{name} must be a pair (chains, steps) of integers, got {value!r}"
        )
    chains = checks.integer(f"{name} chains", value[0], low=1)
    steps = checks.integer(f"{name} steps", value[1], low=min_steps)
    return chains, steps


def _sequence(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise checks.ArgumentKindError(f"{name} must be a sequence, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def reals(name: str, values, **bounds) -> list[float]:
    """A non-empty sequence of finite reals, each within ``bounds`` (as :func:`checks.real`)."""
    return [checks.real(f"{name}[{i}]", v, **bounds) for i, v in enumerate(_sequence(name, values))]


def integers(name: str, values, **bounds) -> list[int]:
    """A non-empty sequence of integers, each within ``bounds`` (as :func:`checks.integer`)."""
    return [
        checks.integer(f"{name}[{i}]", v, **bounds) for i, v in enumerate(_sequence(name, values))
    ]


def mapping(name: str, value, of: type | tuple[type, ...] | None = None, empty: bool = False):
    """A dict (any ``Mapping``), its values instances of ``of``; non-empty unless ``empty``."""
    if not isinstance(value, Mapping):
        raise checks.ArgumentKindError(f"{name} must be a dict, got {type(value).__name__}")
    if not empty and not value:
        raise ValueError(f"{name} must not be empty")
    if of is not None:
        for key, item in value.items():
            instance(f"{name}[{key!r}]", item, of)
    return value


def instance(name: str, value, of: type | tuple[type, ...]):
    """``value`` if it is an instance of ``of``."""
    if not isinstance(value, of):
        kinds = of if isinstance(of, tuple) else (of,)
        wanted = " or ".join(k.__name__ for k in kinds)
        raise checks.ArgumentKindError(f"{name} must be a {wanted}, got {type(value).__name__}")
    return value
