"""Replica exchange (parallel tempering) with optional maps between neighbouring replicas.

A ladder of ``R`` targets ``p_i ∝ e^{-S_i}``, rung 0 the physical theory, each rung updated
by its own sampler (heatbath, HMC, flow-MH), then swaps between neighbouring rungs. A swap
of the pair ``(i, i+1)`` with a map ``f_i`` (a flow that carries rung ``i`` towards rung
``i+1``, with ``J_i = |det ∂f_i|``) proposes the involution
``(U_i, U_{i+1}) → (f_i^{-1} U_{i+1}, f_i U_i)`` and accepts it with ``min(1, e^r)``,

    r = [S_i(U_i) - S_{i+1}(f_i U_i) + log J_i(U_i)]
      + [S_{i+1}(U_{i+1}) - S_i(f_i^{-1} U_{i+1}) - log J_i(f_i^{-1} U_{i+1})].

The normalisations cancel, and since the proposal is its own inverse the joint distribution
``Π_i p_i`` is left invariant: every rung keeps its own target, exactly. With the identity
map this is plain replica exchange (for a β ladder ``r = (β_{i+1} - β_i)(E_i - E_{i+1})``,
``E = Σ_P cos θ_P``); with flows it is T-REX (Abbott et al., arXiv:2404.11674). The
symmetry ``P(r) e^r = P(-r)`` of an involution gives two sharp checks of every recorded
``r``: ``⟨e^r⟩ = 1`` and ``⟨min(1, e^r)⟩ = 2 Prob(r > 0)``.

Swaps alternate between the even pairs ``(0, 1), (2, 3), …`` (on even steps) and the odd
pairs ``(1, 2), (3, 4), …``, so the pairs swapped together are disjoint. Configurations move
between rungs; the *walkers* (labels that travel with them) record how the ladder mixes:
a round trip is a walker's passage from rung 0 to rung ``R - 1`` and back.

A map is any object with ``forward(x) -> (y, log|det ∂y/∂x|)`` and
``reverse(y) -> (x, log|det ∂x/∂y|)`` on fields ``(B, *lattice)`` (:class:`IdentityMap`, or the
``flow`` of a gauge-equivariant U(1) model applied to configurations), ``None`` for the
identity.

After a swap each rung's sampler restarts from its new configurations with ``init`` (which
recomputes what the state caches: an action, a flow density), so any lab sampler can sit on
a rung; ``init`` checks the fields, the one host synchronisation of a step.

References:
    K. Hukushima, K. Nemoto, J. Phys. Soc. Jpn. 65 (1996) 1604; M. Hasenbusch,
    arXiv:1706.04443 (parallel tempering on boundary conditions); R. Abbott et al.,
    arXiv:2404.11674 (T-REX, DR-REX).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .. import checks
from .base import _accept

__all__ = [
    "IdentityMap",
    "ReplicaExchange",
    "ReplicaExchangeState",
    "ReplicaExchangeInfo",
    "swap_log_ratio",
]


class IdentityMap:
    """The identity as a replica map: ``forward(x) = (x, 0)``, ``reverse(y) = (y, 0)``."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.new_zeros(x.shape[0])

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return y, y.new_zeros(y.shape[0])

    def __repr__(self) -> str:
        return "IdentityMap()"


@dataclass(frozen=True)
class ReplicaExchangeState:
    """The ladder's state.

    Attributes:
        x: the physical rung's fields ``(B, *lattice)`` (what :func:`run_chain` measures).
        rungs: each rung's sampler state, rung 0 first (``rungs[i].x`` its fields).
        walker: ``(R, B)`` long, the walker at each rung of each ladder.
        last_end: ``(R, B)`` long per walker: ``0`` if it last touched rung 0, ``1`` if rung
            ``R - 1``, ``-1`` if neither yet.
        round_trips: ``(B,)`` long, completed round trips (rung 0 → ``R - 1`` → 0) per ladder.
        steps: steps taken (its parity picks the pairs of the next swap).
    """

    x: torch.Tensor
    rungs: tuple
    walker: torch.Tensor
    last_end: torch.Tensor
    round_trips: torch.Tensor
    steps: int


@dataclass(frozen=True)
class ReplicaExchangeInfo:
    """One step's record.

    Attributes:
        accepted: ``(B,)``, the fraction of this step's attempted swaps accepted.
        attempted: ``(R - 1,)`` bool, the pairs swapped this step.
        swap_accepted: ``(R - 1, B)`` bool (``False`` where not attempted).
        log_ratio: ``(R - 1, B)``, ``r`` of each attempted swap (NaN elsewhere).
        rung_accepted: ``(R, B)``, each rung sampler's own acceptance this step.
    """

    accepted: torch.Tensor
    attempted: torch.Tensor
    swap_accepted: torch.Tensor
    log_ratio: torch.Tensor
    rung_accepted: torch.Tensor


class ReplicaExchange:
    """Replica exchange over a ladder of actions, batched over ``B`` independent ladders.

    Args:
        actions: the rungs' actions ``S_i`` (callables ``(B, *lattice) -> (B,)``), the physical
            theory first; at least two.
        samplers: one sampler per rung (its own action is ``actions[i]``), e.g.
            ``U1Heatbath``, ``HMC``, ``FlowMetropolis``.
        maps: ``R - 1`` maps, ``maps[i]`` from rung ``i`` towards rung ``i + 1`` (``None``
            entries, or ``maps=None``, for the identity).
        translate: translate the physical rung's fields by a random lattice vector (one per
            step, the same for every ladder) before the swaps. Exact whenever the physical
            action is translation invariant; with a defect ladder it moves the defect across
            the physical configurations (as in PTBC codes).

    Example:
        >>> betas = [6.0, 5.0, 4.0]
        >>> actions = [U1WilsonAction(b) for b in betas]
        >>> rex = ReplicaExchange(actions, [U1Heatbath(a) for a in actions])
        >>> chain = run_chain(rex, torch.zeros(8, 2, 8, 8), 100, torch.Generator())

    Raises:
        TypeError, ValueError: naming the argument: fewer than two rungs, a sampler count
            other than the actions', a sampler without ``init``/``step``, an action that is not
            callable, a map without ``forward``/``reverse``, ``R - 1`` maps expected.
    """

    State = ReplicaExchangeState

    def __init__(
        self,
        actions: Sequence,
        samplers: Sequence,
        maps: Sequence | None = None,
        translate: bool = False,
    ):
        actions = _sequence("actions", actions)
        samplers = _sequence("samplers", samplers)
        if len(actions) < 2:
            raise ValueError(f"actions must hold at least two rungs, got {len(actions)}")
        if len(samplers) != len(actions):
            raise ValueError(
                f"samplers must hold one sampler per rung ({len(actions)}), got {len(samplers)}"
            )
        for i, action in enumerate(actions):
            if not callable(action):
                raise checks.ArgumentKindError(f"actions[{i}] must be callable, got {action!r}")
        for i, sampler in enumerate(samplers):
            if not (hasattr(sampler, "init") and hasattr(sampler, "step")):
                raise checks.ArgumentKindError(
                    f"samplers[{i}] must have init and step methods, got {type(sampler).__name__}"
                )
        if maps is None:
            maps = [None] * (len(actions) - 1)
        maps = _sequence("maps", maps)
        if len(maps) != len(actions) - 1:
            raise ValueError(
                f"maps must hold one map per neighbouring pair ({len(actions) - 1}), got "
                f"{len(maps)}"
            )
        for i, m in enumerate(maps):
            if m is not None and not (hasattr(m, "forward") and hasattr(m, "reverse")):
                raise checks.ArgumentKindError(
                    f"maps[{i}] must have forward and reverse methods (or be None), got "
                    f"{type(m).__name__}"
                )
        self.actions = list(actions)
        self.samplers = list(samplers)
        self.maps = [IdentityMap() if m is None else m for m in maps]
        self.translate = checks.boolean("translate", translate)

    @property
    def n_rungs(self) -> int:
        return len(self.actions)

    def __repr__(self) -> str:
        return f"ReplicaExchange({self.n_rungs} rungs, maps={self.maps!r})"

    def init(self, x, generator: torch.Generator | None = None) -> ReplicaExchangeState:
        """Start every ladder from ``x``: fields ``(B, *lattice)`` for every rung, or a
        sequence of ``R`` such tensors, one per rung."""
        if isinstance(x, torch.Tensor):
            fields = [x] * self.n_rungs
        elif isinstance(x, Sequence) and len(x) == self.n_rungs:
            fields = list(x)
        else:
            raise ValueError(
                f"x must be fields (B, *lattice) or a sequence of {self.n_rungs} of them (one "
                f"per rung), got {type(x).__name__}"
            )
        rungs = tuple(s.init(f, generator) for s, f in zip(self.samplers, fields, strict=True))
        B = rungs[0].x.shape[0]
        if any(r.x.shape != rungs[0].x.shape for r in rungs):
            raise ValueError(
                f"x: every rung needs fields of one shape, got {[tuple(r.x.shape) for r in rungs]}"
            )
        device = rungs[0].x.device
        R = self.n_rungs
        walker = torch.arange(R, device=device)[:, None].expand(R, B).clone()
        last_end = torch.full((R, B), -1, dtype=torch.long, device=device)
        last_end[0], last_end[R - 1] = 0, 1
        zeros = torch.zeros(B, dtype=torch.long, device=device)
        return ReplicaExchangeState(rungs[0].x, rungs, walker, last_end, zeros, 0)

    def log_ratio(self, i: int, lower: torch.Tensor, upper: torch.Tensor) -> tuple:
        """``r`` of swapping ``lower`` (rung ``i``) and ``upper`` (rung ``i + 1``), with the
        proposed pair ``(f_i^{-1} upper, f_i lower)``: ``(r, new_lower, new_upper)``
        (:func:`swap_log_ratio` with this pair's actions and map)."""
        return swap_log_ratio(self.actions[i], self.actions[i + 1], lower, upper, self.maps[i])

    def step(self, state: ReplicaExchangeState, generator: torch.Generator | None = None):
        """Update every rung with its sampler, then swap the pairs of this step's parity."""
        R = self.n_rungs
        rungs, rung_acc = [], []
        for sampler, rung in zip(self.samplers, state.rungs, strict=True):
            rung, info = sampler.step(rung, generator)
            rungs.append(rung)
            rung_acc.append(info.accepted.to(rung.x.real.dtype))
        x = [r.x for r in rungs]
        changed = set()
        if self.translate:  # link fields (B, 2, L0, L1) or any (B, d, *lattice): the last two
            L0, L1 = x[0].shape[-2:]
            shifts = torch.randint(0, L0 * L1, (1,), generator=generator, device=x[0].device)
            s0, s1 = divmod(int(shifts), L1)
            x[0] = torch.roll(x[0], (s0, s1), dims=(-2, -1))
            changed.add(0)
        B = x[0].shape[0]
        dtype = x[0].real.dtype
        log_ratio = torch.full((R - 1, B), float("nan"), dtype=dtype, device=x[0].device)
        swap = torch.zeros(R - 1, B, dtype=torch.bool, device=x[0].device)
        attempted = torch.zeros(R - 1, dtype=torch.bool)
        walker = state.walker.clone()
        with torch.no_grad():
            for i in range(state.steps % 2, R - 1, 2):
                r, new_lower, new_upper = self.log_ratio(i, x[i], x[i + 1])
                ok = _accept(r.to(dtype), generator)
                view = (-1,) + (1,) * (x[i].dim() - 1)
                x[i], x[i + 1] = (
                    torch.where(ok.view(view), new_lower, x[i]),
                    torch.where(ok.view(view), new_upper, x[i + 1]),
                )
                walker[i], walker[i + 1] = (
                    torch.where(ok, state.walker[i + 1], state.walker[i]),
                    torch.where(ok, state.walker[i], state.walker[i + 1]),
                )
                log_ratio[i], swap[i], attempted[i] = r, ok, True
                changed |= {i, i + 1}
        for i in sorted(changed):
            rungs[i] = self.samplers[i].init(x[i], generator)
        last_end, round_trips = _walk(walker, state.last_end, state.round_trips)
        n = max(int(attempted.sum()), 1)
        accepted = swap.to(dtype).sum(dim=0) / n
        new_state = ReplicaExchangeState(
            rungs[0].x, tuple(rungs), walker, last_end, round_trips, state.steps + 1
        )
        info = ReplicaExchangeInfo(accepted, attempted, swap, log_ratio, torch.stack(rung_acc))
        return new_state, info


def swap_log_ratio(source, target, lower: torch.Tensor, upper: torch.Tensor, map=None) -> tuple:
    """The swap of ``lower`` (a configuration of ``source``) with ``upper`` (of ``target``)
    through ``map`` (``None``: the identity): ``(r, f^{-1}(upper), f(lower))`` with ``r`` of
    the module docstring, ``(B,)``. No sampler is needed: what a swap of independent draws
    would accept is ``min(1, e^r)``."""
    f = IdentityMap() if map is None else map
    new_upper, logJ = f.forward(lower)
    new_lower, logJ_inv = f.reverse(upper)
    r = (source(lower) - target(new_upper) + logJ) + (target(upper) - source(new_lower) + logJ_inv)
    return r, new_lower, new_upper


def _walk(walker: torch.Tensor, last_end: torch.Tensor, round_trips: torch.Tensor):
    """Update each walker's last end (by walker id) and count arrivals at rung 0 of walkers
    that came from rung ``R - 1``."""
    R = walker.shape[0]
    last_end = last_end.clone()
    bottom, top = walker[0], walker[R - 1]  # (B,) walker ids at the two ends
    came_back = last_end.gather(0, bottom[None])[0] == 1
    round_trips = round_trips + came_back.long()
    last_end.scatter_(0, bottom[None], torch.zeros_like(bottom)[None])
    last_end.scatter_(0, top[None], torch.ones_like(top)[None])
    return last_end, round_trips


def _sequence(name: str, value) -> list:
    if isinstance(value, (str, bytes, torch.Tensor)) or not isinstance(value, Sequence):
        raise checks.ArgumentKindError(f"{name} must be a sequence, got {type(value).__name__}")
    return list(value)
