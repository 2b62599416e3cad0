"""Notebook 05's compositions: replica-exchange ladders, their records, and maps between rungs.

- :func:`run_ladder` runs a :class:`~lqft_lab.samplers.ReplicaExchange` and keeps what a
  ladder is judged by: every rung's observables, the log-ratio ``r`` of every attempted swap
  (per-pair acceptance ``⟨min(1, e^r)⟩`` and the identities ``⟨e^r⟩ = 1``,
  ``acceptance = 2 Prob(r > 0)``), the walkers' positions and the round trips.
- :func:`identity_flow` and :func:`train_replica_map` make a T-REX map: a gauge-equivariant
  U(1) flow that starts as the identity and learns to carry rung ``i``'s configurations to
  rung ``i + 1`` by the reverse KL of its push-forward, ``E_{U ~ p_i}[S_{i+1}(f(U)) - log J(U)]``,
  on independent draws of rung ``i`` (exact ones where they exist: never on a frozen chain).

References:
    R. Abbott et al., arXiv:2404.11674 (T-REX, DR-REX); M. Hasenbusch, arXiv:1706.04443.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from .. import checks
from ..flows import build_u1_flow
from ..samplers.replica_exchange import ReplicaExchange
from . import _checks

__all__ = ["LadderRun", "run_ladder", "identity_flow", "train_replica_map", "swap_log_ratios"]


@dataclass(frozen=True)
class LadderRun:
    """What :func:`run_ladder` recorded after thermalisation (``T`` steps, ``R`` rungs,
    ``B`` ladders).

    Attributes:
        observables: name → ``(T, R, B)`` series, every rung measured every step.
        log_ratio: ``(T, R - 1, B)``, ``r`` of the attempted swaps (NaN where a pair rested).
        walker: ``(T, R, B)``, the walker at each rung after each step.
        round_trips: ``(B,)``, completed round trips over the whole run (thermalisation too).
        seconds: wall-clock time of the whole run.
        final: the last :class:`~lqft_lab.samplers.ReplicaExchangeState`.
    """

    observables: dict
    log_ratio: torch.Tensor
    walker: torch.Tensor
    round_trips: torch.Tensor
    seconds: float
    final: object

    def acceptance(self) -> torch.Tensor:
        """Per pair, ``⟨min(1, e^r)⟩`` over the attempted swaps, ``(R - 1,)`` (the expected
        acceptance: the same mean as the accept flags, with less noise)."""
        return torch.nanmean(self.log_ratio.exp().clamp(max=1), dim=(0, 2))

    def identity_gaps(self) -> torch.Tensor:
        """Per pair, ``(⟨e^r⟩ - 1, ⟨min(1, e^r)⟩ - 2 Prob(r > 0))``, ``(R - 1, 2)``: both
        vanish in expectation for any exact swap (an involution in equilibrium)."""
        r = self.log_ratio
        attempted = ~torch.isnan(r)
        n = attempted.sum(dim=(0, 2)).clamp(min=1)
        e = torch.where(attempted, r.exp(), 0).sum(dim=(0, 2)) / n - 1
        acc = self.acceptance()
        positive = torch.where(attempted, (r > 0).to(r.dtype), 0).sum(dim=(0, 2)) / n
        return torch.stack([e, acc - 2 * positive], dim=1)

    def positions(self, walker: int = 0) -> torch.Tensor:
        """The rung of walker ``walker`` in each ladder after each step, ``(T, B)``."""
        return (self.walker == walker).to(torch.long).argmax(dim=1)


def run_ladder(
    sampler: ReplicaExchange,
    x0,
    n_steps: int,
    generator: torch.Generator | None = None,
    observables: Mapping[str, Callable] | None = None,
    thermalize: int = 0,
    callback: Callable | None = None,
    callback_every: int = 10,
    progress: bool = False,
) -> LadderRun:
    """Run ``thermalize + n_steps`` replica-exchange steps, recording every rung.

    Args:
        sampler: the :class:`~lqft_lab.samplers.ReplicaExchange`.
        x0: starting fields, as :meth:`ReplicaExchange.init` takes them.
        n_steps, thermalize: recorded and discarded steps.
        generator: random source.
        observables: name → function of fields ``(B, *lattice) -> (B,)``, measured on every
            rung.
        callback: ``callback(step, summary)`` every ``callback_every`` recorded steps, with
            ``summary`` holding ``"acceptance"`` (mean over pairs so far) and each
            observable's latest mean on the physical rung, e.g. a
            :class:`~lqft_lab.widgets.SamplingDashboard`'s ``callback``.
        progress: show a progress bar.

    Returns:
        A :class:`LadderRun`.

    Raises:
        TypeError, ValueError: naming the argument.
    """
    if not isinstance(sampler, ReplicaExchange):
        raise checks.ArgumentKindError(
            f"sampler must be a ReplicaExchange, got {type(sampler).__name__}"
        )
    n_steps = checks.integer("n_steps", n_steps, low=1)
    thermalize = checks.integer("thermalize", thermalize, low=0)
    callback_every = checks.integer("callback_every", callback_every, low=1)
    observables = dict(_checks.mapping("observables", observables or {}, empty=True))
    for name, fn in observables.items():
        if not callable(fn):
            raise checks.ArgumentKindError(f"observables[{name!r}] must be callable")
    if callback is not None and not callable(callback):
        raise checks.ArgumentKindError(f"callback must be callable, got {callback!r}")
    _checks.flag("progress", progress)
    state = sampler.init(x0, generator)
    series = {name: [] for name in observables}
    ratios, walkers = [], []
    steps = range(thermalize + n_steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="replica exchange")
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in steps:
            state, info = sampler.step(state, generator)
            if t < thermalize:
                continue
            ratios.append(info.log_ratio)
            walkers.append(state.walker)
            for name, fn in observables.items():
                series[name].append(torch.stack([fn(r.x) for r in state.rungs]))
            done = t - thermalize + 1
            if callback is not None and (done % callback_every == 0 or done == n_steps):
                r = torch.stack(ratios)
                summary = {"acceptance": float(torch.nanmean(r.exp().clamp(max=1)))}
                summary.update({k: float(v[-1][0].mean()) for k, v in series.items()})
                callback(done, summary)
    return LadderRun(
        {k: torch.stack(v) for k, v in series.items()},
        torch.stack(ratios),
        torch.stack(walkers),
        state.round_trips,
        time.perf_counter() - t0,
        state,
    )


def identity_flow(L: int, *, n_layers: int = 8, hidden=(8, 8), seed: int = 0, **config):
    """A gauge-equivariant U(1) flow (:func:`~lqft_lab.flows.build_u1_flow`) that starts as
    the identity map of link configurations: every coupling's conditioner ends in a zero
    convolution (the kernels' zero parameters are the identity). Returns the bijection,
    ``model.flow``, float64: ``forward(θ) -> (θ', log J)``, ``reverse``.

    Raises:
        TypeError, ValueError: as :func:`~lqft_lab.flows.build_u1_flow`.
    """
    model = build_u1_flow(L, n_layers=n_layers, hidden=tuple(hidden), seed=seed, **config)
    with torch.no_grad():
        for layer in model.flow.layers:
            convs = [m for m in layer.modules() if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d)]
            convs[-1].weight.zero_()
            convs[-1].bias.zero_()
    return model.flow.double()


def swap_log_ratios(sampler: ReplicaExchange, pair: int, lower, upper) -> torch.Tensor:
    """``r`` of swapping independent configurations ``lower`` of rung ``pair`` and
    ``upper`` of rung ``pair + 1``, ``(B,)``, without gradients."""
    with torch.no_grad():
        return sampler.log_ratio(pair, lower, upper)[0]


def train_replica_map(
    flow,
    source,
    target,
    draw: Callable,
    *,
    n_steps: int = 200,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    draw_target: Callable | None = None,
    log_every: int = 10,
    callback: Callable | None = None,
    progress: bool = False,
) -> list[dict]:
    """Train ``flow`` to carry ``source``'s configurations to ``target``'s.

    The loss is the reverse KL of the push-forward up to a constant,
    ``E_{U ~ p_source}[S_target(f(U)) - log J(U)]``, on fresh draws ``draw(n, generator)``
    of the source each step. Adam with a cosine decay from ``lr`` to ``lr/100``.

    Args:
        flow: the bijection (e.g. :func:`identity_flow`), with ``forward`` and ``reverse``.
        source, target: the two rungs' actions.
        draw: ``draw(n, generator) -> (n, *lattice)`` independent draws of the source (for a
            Wilson rung, :func:`~lqft_lab.samplers.sample_u1_exact`).
        n_steps, batch_size, lr, seed: the optimisation.
        draw_target: independent draws of the target, to log the swap acceptance
            ``⟨min(1, e^r)⟩`` of the map on each logged batch (``None``: not logged).
        log_every: steps between history entries.
        callback: ``callback(step, entry)`` with each history entry.
        progress: show a progress bar.

    Returns:
        The history: ``{"step", "loss", "loss_err", "acceptance"}`` every ``log_every``
        steps (``acceptance`` NaN without ``draw_target``).

    Raises:
        TypeError, ValueError: naming the argument.
    """
    if not (hasattr(flow, "forward") and hasattr(flow, "reverse")):
        raise checks.ArgumentKindError(f"flow must have forward and reverse, got {flow!r}")
    for name, value in (("source", source), ("target", target), ("draw", draw)):
        if not callable(value):
            raise checks.ArgumentKindError(f"{name} must be callable, got {value!r}")
    if draw_target is not None and not callable(draw_target):
        raise checks.ArgumentKindError(f"draw_target must be callable, got {draw_target!r}")
    n_steps = checks.integer("n_steps", n_steps, low=1)
    batch_size = checks.integer("batch_size", batch_size, low=2)
    lr = checks.positive("lr", lr)
    seed = _checks.seed("seed", seed)
    log_every = checks.integer("log_every", log_every, low=1)
    if callback is not None and not callable(callback):
        raise checks.ArgumentKindError(f"callback must be callable, got {callback!r}")
    _checks.flag("progress", progress)
    params = list(flow.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps, eta_min=lr / 100)
    generator = torch.Generator().manual_seed(seed)
    pair = ReplicaExchange([source, target], [_Idle(), _Idle()], [flow])
    steps = range(1, n_steps + 1)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="replica map")
    history = []
    flow.train()
    for step in steps:
        x = draw(batch_size, generator)
        y, logJ = flow.forward(x)
        per_sample = target(y) - logJ
        loss = per_sample.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 100.0)
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == n_steps:
            acceptance = math.nan
            if draw_target is not None:
                r = swap_log_ratios(pair, 0, x.detach(), draw_target(batch_size, generator))
                acceptance = r.exp().clamp(max=1).mean().item()
            entry = {
                "step": step,
                "loss": loss.item(),
                "loss_err": per_sample.detach().std().item() / math.sqrt(batch_size),
                "acceptance": acceptance,
            }
            history.append(entry)
            if callback is not None:
                callback(step, entry)
    flow.eval()
    return history


class _Idle:
    """A placeholder rung sampler (``train_replica_map`` only evaluates swap ratios)."""

    def init(self, x, generator=None):  # pragma: no cover - never stepped
        raise NotImplementedError

    step = init
