"""One Markov-chain driver for every sampler: thermalise, measure, report, return a Chain.

The driver only relies on the sampler contract of :mod:`lqft_lab.samplers`:
``sampler.init(x, generator=None) -> state``, ``sampler.step(state, generator) ->
(state, info)`` with ``state.x`` the fields ``(B, *lattice)`` and ``info.accepted`` of
shape ``(B,)`` (bool, or an acceptance fraction). Measurements stay on the device during
the run; the host only sees Python floats at callback time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import checks

__all__ = ["Chain", "run_chain"]

Observable = Callable[[torch.Tensor], torch.Tensor]
ChainCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Chain:
    """A finished run of ``B`` parallel chains.

    Attributes:
        observables: name → measurements ``(T, B)``, one row per measurement.
        accepted: ``(T, B)`` float, mean acceptance over the ``every`` steps that end at
            each measurement.
        final: the sampler state after the last step (pass it back to continue the run).
        every: steps between measurements.
        log_weights: for samplers whose info carries ``logw`` (``FlowMetropolis``), the
            proposals' log weights ``logp - logq`` of every step after thermalisation,
            flattened to ``(n_steps · B,)`` for ESS estimates; ``None`` otherwise.
    """

    observables: dict[str, torch.Tensor]
    accepted: torch.Tensor
    final: Any
    every: int = 1
    log_weights: torch.Tensor | None = None

    @property
    def acceptance(self) -> float:
        """Mean acceptance over all measured steps and chains."""
        return float(self.accepted.mean())


def _check_int(name: str, value: Any, minimum: int) -> int:
    """:func:`lqft_lab.checks.integer` with a lower bound (kept for the modules using it)."""
    return checks.integer(name, value, low=minimum)


def run_chain(
    sampler,
    x0: torch.Tensor | Any | None,
    n_steps: int,
    generator: torch.Generator | None = None,
    observables: Mapping[str, Observable] | None = None,
    thermalize: int = 0,
    every: int = 1,
    callback: ChainCallback | None = None,
    callback_every: int | None = None,
    progress: bool = False,
) -> Chain:
    """Run ``thermalize + n_steps`` steps of ``sampler`` and measure after thermalisation.

    Args:
        sampler: any lqft_lab sampler (``HMC``, ``LocalMetropolis``, ``FlowMetropolis``, ...).
        x0: starting fields ``(B, *lattice)`` (passed to ``sampler.init``), a state returned
            by an earlier run (``chain.final``), or ``None`` for samplers that can start
            themselves (``FlowMetropolis`` draws from its model).
        n_steps: steps after thermalisation; measurements are taken after every ``every``-th
            of them, so there are ``T = n_steps // every`` rows.
        generator: random source for every step.
        observables: name → function of the fields ``(B, *lattice) -> (B,)``.
        thermalize: steps discarded before measuring.
        every: steps between measurements (thinning).
        callback: ``callback(step, summary)`` with ``summary`` a dict of Python floats:
            ``"acceptance"`` (so far, after thermalisation; during thermalisation the
            thermalisation acceptance) and the latest batch mean of each observable.
        callback_every: steps between callbacks (default: 1% of the run, at least 1); the
            last step always reports.
        progress: show a ``tqdm.auto`` progress bar.

    Returns:
        A :class:`Chain`.

    Raises:
        TypeError: (also ValueErrors, :class:`~lqft_lab.checks.ArgumentKindError`) for a
            ``sampler`` without ``init`` and ``step``, non-integer counts, ``observables``
            that are not a mapping, a ``callback`` that is not callable, a non-bool
            ``progress``, a ``generator`` that is not a generator, an ``x0`` state of
            another sampler.
        ValueError: for out-of-range counts, ``n_steps < every``, observables that are not
            callables returning ``(B,)``, an ``x0`` state with non-finite fields, and what
            ``sampler.init`` refuses (non-finite or mis-shaped starting fields).
    """
    if not (hasattr(sampler, "init") and hasattr(sampler, "step")):
        raise checks.ArgumentKindError(
            f"sampler must have init and step methods (HMC, FlowMetropolis, ...), got "
            f"{type(sampler).__name__}"
        )
    n_steps = checks.integer("n_steps", n_steps, low=1)
    thermalize = checks.integer("thermalize", thermalize, low=0)
    every = checks.integer("every", every, low=1)
    if n_steps < every:
        raise ValueError(f"n_steps ({n_steps}) must be >= every ({every}) to measure anything")
    if observables is not None and not isinstance(observables, Mapping):
        raise checks.ArgumentKindError(
            f"observables must be a mapping name -> function of the fields, got "
            f"{type(observables).__name__}"
        )
    observables = dict(observables or {})
    for name, fn in observables.items():
        if not callable(fn):
            raise ValueError(f"observable {name!r} must be a callable of the fields, got {fn!r}")
    if callback is not None and not callable(callback):
        raise checks.ArgumentKindError(
            f"callback must be a callable (step, summary) or None, got {type(callback).__name__}"
        )
    if not isinstance(progress, bool):
        raise checks.ArgumentKindError(f"progress must be a bool, got {progress!r:.80}")
    checks.random_generator("generator", generator)
    total = thermalize + n_steps
    if callback_every is None:
        callback_every = max(1, total // 100)
    callback_every = checks.integer("callback_every", callback_every, low=1)

    if isinstance(x0, torch.Tensor) or x0 is None:
        state = sampler.init(x0, generator=generator)
    elif hasattr(x0, "x"):
        state = _check_state(sampler, x0)
    else:
        raise ValueError(
            f"x0 must be fields (B, *lattice), a sampler state or None, got {type(x0).__name__}"
        )
    checks.random_generator("generator", generator, state.x.device)
    B = state.x.shape[0]
    real = state.x.real if state.x.is_complex() else state.x  # acceptance is real for SU(N) links

    series: dict[str, list[torch.Tensor]] = {name: [] for name in observables}
    accepted_rows: list[torch.Tensor] = []
    block = real.new_zeros(B)  # acceptance summed over the current measurement block
    run_sum, run_count = real.new_zeros(B), 0  # for callbacks
    latest: dict[str, torch.Tensor] = {}
    log_weights: list[torch.Tensor] = []

    with torch.no_grad():
        for t in tqdm(range(total), disable=not progress, desc=type(sampler).__name__):
            state, info = sampler.step(state, generator)
            acc = info.accepted.to(real.dtype)
            if t == thermalize:  # callbacks report the production acceptance from here on
                run_sum, run_count = real.new_zeros(B), 0
            run_sum, run_count = run_sum + acc, run_count + 1
            if t >= thermalize:
                block = block + acc
                if getattr(info, "logw", None) is not None:
                    log_weights.append(info.logw)
                if (t - thermalize + 1) % every == 0:
                    accepted_rows.append(block / every)
                    block = real.new_zeros(B)
                    for name, fn in observables.items():
                        value = fn(state.x)
                        if value.shape != (B,):
                            raise ValueError(
                                f"observable {name!r} must return shape ({B},), "
                                f"got {tuple(value.shape)}"
                            )
                        series[name].append(value)
                        latest[name] = value
            if callback is not None and ((t + 1) % callback_every == 0 or t + 1 == total):
                summary = {"acceptance": float(run_sum.mean()) / run_count}
                summary.update({name: float(v.mean()) for name, v in latest.items()})
                callback(t + 1, summary)

    return Chain(
        observables={name: torch.stack(rows) for name, rows in series.items()},
        accepted=torch.stack(accepted_rows),
        final=state,
        every=every,
        log_weights=torch.cat(log_weights) if log_weights else None,
    )


def _check_state(sampler, state):
    """A state handed to :func:`run_chain` as ``x0`` (``chain.final`` of an earlier run): of
    the sampler's ``State`` type where it declares one, with finite fields."""
    expected = getattr(sampler, "State", None)
    if isinstance(expected, type) and not isinstance(state, expected):
        raise checks.ArgumentKindError(
            f"x0 is a {type(state).__name__}, but {type(sampler).__name__} continues from a "
            f"{expected.__name__} (pass the fields instead to start afresh)"
        )
    checks.tensor("x0.x", state.x, allow_complex=True)
    return state
