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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch

from .. import checks
from ..flows import add_context, build_u1_flow
from ..samplers.replica_exchange import ReplicaExchange, swap_log_ratio
from . import _checks

__all__ = [
    "ReplicaSizes",
    "LadderRun",
    "run_ladder",
    "identity_flow",
    "exact_draw",
    "exact_swap_acceptance",
    "pair_names",
    "defect_context",
    "train_replica_map",
    "swap_log_ratios",
    "acceptance_vs_volume",
    "beta_ladder",
    "defect_ladder",
    "heatbath_ladder",
    "pair_table",
    "rung_pulls",
    "pulls_table",
    "BillRow",
    "bill_row",
    "chain_bill",
    "bill_table",
]


@dataclass(frozen=True)
class ReplicaSizes:
    """Notebook 05's sizes per mode; the defaults are full mode's (L = 16, β = 6).

    Attributes:
        L: the lattice; ``beta``: the physical coupling (rung 0).
        ladders: independent ladders (the batch).
        steps, thermalize: recorded and discarded replica-exchange steps.
        heatbath: ``(chains, sweeps)`` of the plain heatbath at ``β`` (the baseline).
        beta_low, beta_spacing: the plain β ladder runs from ``beta`` down to ``beta_low``
            in steps of ``beta_spacing``.
        trex_spacing: the T-REX ladder's spacing (wider: its maps carry the gap).
        map_steps, map_layers: training steps and coupling layers of each T-REX map.
        defect_d, defect_rungs: the defect ladder's plaquettes and rungs (``c`` from 1 to 0).
        drrex_rungs: rungs of the DR-REX ladder (the same defect, maps between its rungs).
        baselines: ``(chains, steps)`` of notebook 02's HMC, flow-MH and flow-MH + heatbath
            at the physical point, for the bill.
        volume_Ls, volume_draws: the acceptance-against-volume scan (exact draws per L).
    """

    L: int = 16
    beta: float = 6.0
    ladders: int = 64
    steps: int = 2000
    thermalize: int = 200
    heatbath: tuple[int, int] = (64, 4000)
    beta_low: float = 3.0
    beta_spacing: float = 0.25
    trex_spacing: float = 0.5
    map_steps: int = 1000
    map_layers: int = 16
    defect_d: int = 8
    defect_rungs: int = 10
    drrex_rungs: int = 5
    baselines: tuple[int, int] = (64, 1000)
    volume_Ls: tuple[int, ...] = (8, 12, 16, 24, 32)
    volume_draws: int = 4096

    def __post_init__(self):
        checks.integer("L", self.L, low=4)
        if self.L % 4:
            raise ValueError(f"L must be a multiple of 4 (the flows' stripes), got {self.L}")
        checks.real("beta", self.beta, low=0)
        for name in ("ladders", "steps", "map_steps", "map_layers", "defect_d", "volume_draws"):
            checks.integer(name, getattr(self, name), low=1)
        checks.integer("thermalize", self.thermalize, low=0)
        checks.integer("defect_rungs", self.defect_rungs, low=2)
        checks.integer("drrex_rungs", self.drrex_rungs, low=2)
        _checks.chains_and_steps("baselines", self.baselines)
        _checks.chains_and_steps("heatbath", self.heatbath)
        checks.real("beta_low", self.beta_low, low=0, high=self.beta)
        for name in ("beta_spacing", "trex_spacing"):
            checks.positive(name, getattr(self, name))
        Ls = tuple(_checks.integers("volume_Ls", self.volume_Ls, low=2))
        object.__setattr__(self, "volume_Ls", Ls)

    @classmethod
    def for_mode(cls, mode: str, **changes) -> ReplicaSizes:
        """``"full"`` (the defaults) or ``"fast"`` (L = 8, short ladders: minutes on a CPU),
        with ``changes`` applied on top."""
        mode = checks.choice("mode", mode, ("fast", "full"))
        base = cls()
        if mode == "fast":
            base = replace(
                base,
                L=8,
                ladders=32,
                steps=300,
                thermalize=50,
                heatbath=(32, 600),
                beta_low=3.0,
                beta_spacing=0.5,
                trex_spacing=1.0,
                map_steps=100,
                map_layers=8,
                defect_d=4,
                defect_rungs=6,
                drrex_rungs=4,
                baselines=(32, 200),
                volume_Ls=(8, 12, 16, 24),
                volume_draws=2048,
            )
        unknown = sorted(set(changes) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"ReplicaSizes has no field {unknown[0]!r}: cannot change it")
        return replace(base, **changes)


def beta_ladder(beta: float, beta_low: float, spacing: float) -> list[float]:
    """``β, β - spacing, …`` down to ``beta_low`` (included when the spacing lands on it,
    else the last rung is the first below it)."""
    beta = checks.real("beta", beta, low=0)
    beta_low = checks.real("beta_low", beta_low, low=0, high=beta)
    spacing = checks.positive("spacing", spacing)
    n = math.ceil((beta - beta_low) / spacing - 1e-9)
    return [beta - k * spacing for k in range(n + 1)]


def defect_ladder(n_rungs: int) -> list[float]:
    """The defect couplings ``c = 1, …, 0`` of ``n_rungs`` evenly spaced rungs."""
    n_rungs = checks.integer("n_rungs", n_rungs, low=2)
    return [1 - k / (n_rungs - 1) for k in range(n_rungs)]


def pair_names(n_rungs: int) -> list[str]:
    """``["swap 0↔1", "swap 1↔2", …]``: the per-pair keys of :func:`run_ladder`'s live
    summaries."""
    n_rungs = checks.integer("n_rungs", n_rungs, low=2)
    return [f"swap {i}↔{i + 1}" for i in range(n_rungs - 1)]


def exact_swap_acceptance(actions, L: int, n_draws: int = 2048, seed: int = 0) -> list[float]:
    """Plain (unmapped) swap acceptance ``⟨min(1, e^r)⟩`` of each neighbouring pair of a
    ladder of Wilson or defect rungs, on independent exact draws of both rungs
    (:func:`exact_draw`): what an equilibrated plain ladder would accept, the yardstick of
    a flowed ladder at the same spacing.

    Raises:
        TypeError, ValueError: naming the argument.
    """
    if isinstance(actions, (str, bytes)) or not isinstance(actions, Sequence):
        raise checks.ArgumentKindError(f"actions must be a sequence, got {actions!r:.80}")
    if len(actions) < 2:
        raise ValueError(f"actions must hold at least two rungs, got {len(actions)}")
    n_draws = checks.integer("n_draws", n_draws, low=2)
    gen = torch.Generator().manual_seed(_checks.seed("seed", seed))
    draws = [exact_draw(a, L)(n_draws, gen) for a in actions]
    with torch.no_grad():
        return [
            swap_log_ratio(actions[i], actions[i + 1], draws[i], draws[i + 1])[0]
            .exp().clamp(max=1).mean().item()
            for i in range(len(actions) - 1)
        ]  # fmt: skip


def exact_draw(action, L: int, dtype: torch.dtype = torch.float64) -> Callable:
    """``draw(n, generator) -> (n, 2, L, L)``: independent exact draws of one rung.

    The rung is a :class:`~lqft_lab.actions.U1WilsonAction` or a
    :class:`~lqft_lab.actions.U1DefectAction` (its plaquette weights passed to
    :func:`~lqft_lab.samplers.sample_u1_exact`): what :func:`train_replica_map` needs to train
    a map on its source rung, never on a chain.

    Raises:
        TypeError: ``action`` is neither; ValueError: a bad ``L`` or a defect that does not
            fit it.
    """
    from ..actions import U1DefectAction, U1WilsonAction
    from ..samplers import sample_u1_exact

    L = checks.integer("L", L, low=2)
    if isinstance(action, U1DefectAction):
        weights = action.plaquette_weights(L, L)
    elif isinstance(action, U1WilsonAction):
        weights = None
    else:
        raise checks.ArgumentKindError(
            f"action must be a U1WilsonAction or a U1DefectAction, got {type(action).__name__}"
        )

    def draw(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_u1_exact(n, L, action.beta, generator, weights=weights, dtype=dtype)

    return draw


def defect_context(d: int, L: int) -> torch.Tensor:
    """``(1, L, L)``: 1 on the ``d`` plaquettes of :class:`~lqft_lab.actions.U1DefectAction`'s
    defect, 0 elsewhere; the context a DR-REX map sees (:func:`identity_flow`)."""
    L = checks.integer("L", L, low=2)
    d = checks.integer("d", d, low=1, high=L)
    context = torch.zeros(1, L, L, dtype=torch.float64)
    context[0, 0, :d] = 1.0
    return context


def acceptance_vs_volume(
    beta_a: float, beta_b: float, Ls, n_draws: int = 2048, seed: int = 0
) -> list[dict]:
    """Plain swap acceptance between ``β_a`` and ``β_b`` against the lattice size: measured
    ``⟨min(1, e^r)⟩`` on independent exact draws of both (with its standard error) beside
    the erfc prediction from the exact energy variances.

    Returns:
        ``[{"L", "measured", "error", "predicted"}, ...]`` in the order of ``Ls``.
    """
    from ..actions import U1WilsonAction
    from ..exact.u1 import u1_swap_acceptance
    from ..samplers import sample_u1_exact

    Ls = _checks.integers("Ls", Ls, low=2)
    n_draws = checks.integer("n_draws", n_draws, low=2)
    gen = torch.Generator().manual_seed(_checks.seed("seed", seed))
    actions = [U1WilsonAction(beta_a), U1WilsonAction(beta_b)]
    rows = []
    for L in Ls:
        lower = sample_u1_exact(n_draws, L, beta_a, gen, dtype=torch.float64)
        upper = sample_u1_exact(n_draws, L, beta_b, gen, dtype=torch.float64)
        with torch.no_grad():
            a = swap_log_ratio(*actions, lower, upper)[0].exp().clamp(max=1)
        rows.append(
            {
                "L": L,
                "measured": a.mean().item(),
                "error": a.std().item() / math.sqrt(n_draws),
                "predicted": u1_swap_acceptance(beta_a, beta_b, L),
            }
        )
    return rows


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
        total_steps: steps run, thermalisation included.
    """

    observables: dict
    log_ratio: torch.Tensor
    walker: torch.Tensor
    round_trips: torch.Tensor
    seconds: float
    final: object
    total_steps: int

    def seconds_per_step(self) -> float:
        """Wall-clock seconds per step of the whole ladder (every rung and swap counted)."""
        return self.seconds / self.total_steps

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

    def identity_pulls(self) -> torch.Tensor:
        """:meth:`identity_gaps` in units of their errors, ``(R - 1, 2)``.

        Each pair's swaps form a ``(T_i, B)`` series (the steps at which it was attempted,
        ladders as replicas); the Γ-method gives the error of ``⟨e^r⟩`` and of
        ``⟨min(1, e^r) - 2·1(r > 0)⟩`` with their autocorrelation. ``e^r`` is heavy-tailed
        where the acceptance is low, so a fixed tolerance on the gap would be too tight there
        and too loose where swaps are easy. NaN for a pair attempted fewer than 4 times.
        """
        from ..analysis import gamma_method

        pulls = []
        for i in range(self.log_ratio.shape[1]):
            r = self.log_ratio[:, i]
            r = r[~torch.isnan(r).any(dim=1)].double()  # (T_i, B)
            if r.shape[0] < 4:  # too few swaps for the Γ-method
                pulls.append([math.nan, math.nan])
                continue
            row = []
            for series, expected in (
                (r.exp(), 1.0),
                (r.exp().clamp(max=1) - 2 * (r > 0).double(), 0.0),
            ):
                est = gamma_method(series.numpy(), warn=False)
                row.append((est.value - expected) / est.error if est.error > 0 else math.nan)
            pulls.append(row)
        return torch.tensor(pulls, dtype=torch.float64)

    def physical(self):
        """The physical rung as a :class:`~lqft_lab.samplers.Chain` (observables ``(T, B)``;
        ``accepted`` the step's mean swap acceptance ``⟨min(1, e^r)⟩`` over its pairs), for
        the Γ-method and :class:`~lqft_lab.widgets.SamplingDashboard`."""
        from ..samplers.chain import Chain

        accepted = torch.nanmean(self.log_ratio.exp().clamp(max=1), dim=1)
        observables = {k: v[:, 0] for k, v in self.observables.items()}
        return Chain(observables=observables, accepted=accepted, final=self.final, every=1)

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
            ``summary`` holding ``"acceptance"`` (mean over pairs so far), each pair's
            acceptance so far as ``"swap i↔i+1"`` (:func:`pair_names`), and each
            observable's latest mean on the physical rung, e.g. a
            :class:`~lqft_lab.widgets.SamplingDashboard`'s ``callback`` (give it the pair
            names among its observables to follow them live).
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
                a = torch.stack(ratios).exp().clamp(max=1)  # (t, pairs, B), NaN: not tried
                summary = {"acceptance": float(torch.nanmean(a))}
                pairs = torch.nanmean(a.transpose(0, 1).flatten(1), dim=1)
                summary.update(zip(pair_names(sampler.n_rungs), pairs.tolist(), strict=True))
                summary.update({k: float(v[-1][0].mean()) for k, v in series.items()})
                callback(done, summary)
    return LadderRun(
        {k: torch.stack(v) for k, v in series.items()},
        torch.stack(ratios),
        torch.stack(walkers),
        state.round_trips,
        time.perf_counter() - t0,
        state,
        thermalize + n_steps,
    )


def identity_flow(
    L: int, *, n_layers: int = 8, hidden=(8, 8), seed: int = 0, context=None, **config
):
    """A gauge-equivariant U(1) flow (:func:`~lqft_lab.flows.build_u1_flow`) that starts as
    the identity map of link configurations: every coupling's conditioner ends in a zero
    convolution (the kernels' zero parameters are the identity). Returns the bijection,
    ``model.flow``, float64: ``forward(θ) -> (θ', log J)``, ``reverse``.

    With ``context`` ``(C, L, L)`` (e.g. :func:`defect_context`) the conditioners also see
    it (:func:`~lqft_lab.flows.add_context`): a map between defect rungs must know where the
    defect is, which translation-equivariant convolutions alone cannot.

    Raises:
        TypeError, ValueError: as :func:`~lqft_lab.flows.build_u1_flow` and
            :func:`~lqft_lab.flows.add_context`.
    """
    model = build_u1_flow(L, n_layers=n_layers, hidden=tuple(hidden), seed=seed, **config)
    if context is not None:
        model = add_context(model, context)
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
                with torch.no_grad():
                    upper = draw_target(batch_size, generator)
                    r = swap_log_ratio(source, target, x.detach(), upper, flow)[0]
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


def heatbath_ladder(actions, maps=None, translate: bool = False) -> ReplicaExchange:
    """A :class:`~lqft_lab.samplers.ReplicaExchange` whose every rung is a
    :class:`~lqft_lab.samplers.U1Heatbath` of its action (one overrelaxation sweep)."""
    from ..samplers import U1Heatbath

    if isinstance(actions, (str, bytes)) or not isinstance(actions, Sequence):
        raise checks.ArgumentKindError(f"actions must be a sequence, got {actions!r:.80}")
    return ReplicaExchange(actions, [U1Heatbath(a) for a in actions], maps, translate=translate)


def pair_table(run: LadderRun, labels, predictions=None) -> str:
    """A markdown table per pair: acceptance, the prediction (if given), and the two identity
    gaps ``⟨e^r⟩ - 1`` and ``⟨min(1, e^r)⟩ - 2 Prob(r > 0)``.

    Args:
        run: a :class:`LadderRun`.
        labels: one label per rung (``β`` values, ``"c = 0.5"``, ...).
        predictions: per pair, a predicted acceptance, or ``None``.
    """
    if not isinstance(run, LadderRun):
        raise checks.ArgumentKindError(f"run must be a LadderRun, got {type(run).__name__}")
    labels = list(labels)
    acceptance, gaps = run.acceptance().tolist(), run.identity_gaps().tolist()
    if len(labels) != len(acceptance) + 1:
        raise ValueError(f"labels must name the {len(acceptance) + 1} rungs, got {len(labels)}")
    if predictions is not None and len(predictions) != len(acceptance):
        raise ValueError(f"predictions must hold one value per pair ({len(acceptance)})")
    lines = [
        "| pair | acceptance | prediction | ⟨e^r⟩ − 1 | acc − 2 P(r > 0) |",
        "|---|---|---|---|---|",
    ]
    for i, (a, (g1, g2)) in enumerate(zip(acceptance, gaps, strict=True)):
        predicted = "—" if predictions is None else f"{predictions[i]:.3f}"
        lines.append(
            f"| {labels[i]} ↔ {labels[i + 1]} | {a:.3f} | {predicted} | {g1:+.3f} | {g2:+.3f} |"
        )
    return "\n".join(lines)


def rung_pulls(run: LadderRun, exact, observable: str = "plaquette") -> list[tuple]:
    """Per rung ``(rung, value, error, exact, pull)`` of ``observable`` (Γ-method over the
    recorded steps, ladders as replicas) against the exact values, one per rung."""
    if not isinstance(run, LadderRun):
        raise checks.ArgumentKindError(f"run must be a LadderRun, got {type(run).__name__}")
    if observable not in run.observables:
        raise ValueError(f"observable {observable!r} was not recorded: {sorted(run.observables)}")
    series = run.observables[observable]
    exact = list(exact)
    if len(exact) != series.shape[1]:
        raise ValueError(
            f"exact must hold one value per rung ({series.shape[1]}), got {len(exact)}"
        )
    from ..analysis import gamma_method

    rows = []
    for i, x in enumerate(exact):
        est = gamma_method(series[:, i].double().cpu().numpy(), warn=False)
        rows.append((i, est.value, est.error, float(x), (est.value - float(x)) / est.error))
    return rows


def pulls_table(rows, labels, name: str = "⟨cos θ_P⟩") -> str:
    """The rows of :func:`rung_pulls` as a markdown table, one label per rung."""
    labels = list(labels)
    lines = [f"| rung | {name} | exact | pull |", "|---|---|---|---|"]
    for (_, value, error, exact, pull), label in zip(rows, labels, strict=True):
        lines.append(f"| {label} | {value:.5f} ± {error:.5f} | {exact:.5f} | {pull:+.2f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class BillRow:
    """One method's cost per independent measurement of ``Q`` on the physical rung.

    Attributes:
        method, rungs: its name and number of replicas (1 for a single chain).
        acceptance: a ladder's mean swap acceptance over pairs, a flow chain's Metropolis
            acceptance (NaN where there is none).
        tau_int: τ_int of ``Q`` in steps (sweeps of every rung, trajectories, proposals).
        seconds_per_step: wall-clock time of a step, every rung and map pass counted.
        lower_bound: ``tau_int`` (and so the cost) is only a lower bound: the charge never
            changed (``tau_int`` is then the run length) or the Γ-method's window did not
            converge.
    """

    method: str
    rungs: int
    acceptance: float
    tau_int: float
    seconds_per_step: float
    lower_bound: bool = False

    @property
    def cost(self) -> float:
        """Seconds per independent ``Q``: ``2 τ_int × seconds per step``."""
        return 2 * self.tau_int * self.seconds_per_step


def bill_row(method: str, rungs: int, charge, seconds_per_step: float, acceptance=math.nan):
    """A :class:`BillRow` from a ``(T, B)`` series of the physical rung's charge.

    A frozen charge (no change in any chain) has no measurable τ_int: the row then carries
    the run length ``T`` as a lower bound, as does a Γ-method window that did not converge.
    """
    from ..analysis import gamma_method

    series = torch.as_tensor(charge).double().cpu()
    if series.dim() != 2 or series.shape[0] < 4:
        raise ValueError(
            f"charge must be a (T, B) series with T >= 4 (the Γ-method), got {tuple(series.shape)}"
        )
    frozen = not bool((series.diff(dim=0).abs() > 0.5).any())
    if frozen:
        tau, lower = float(series.shape[0]), True
    else:
        result = gamma_method(series.numpy(), warn=False)
        tau, lower = result.tau_int, not result.window_converged
    return BillRow(str(method), checks.integer("rungs", rungs, low=1), float(acceptance), tau,
                   checks.positive("seconds_per_step", seconds_per_step), lower)  # fmt: skip


def chain_bill(
    beta: float,
    L: int,
    chains: int,
    steps: int,
    *,
    model=None,
    thermalize: int = 0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[BillRow]:
    """Notebook 02's single-chain methods at the physical point, as :class:`BillRow` s.

    HMC (unit trajectories, :data:`~lqft_lab.studies.u1.chains.HMC_SETTINGS`), and with a
    flow ``model`` for ``(β, L)`` also flow-MH and flow-MH alternated with heatbath sweeps,
    each run by :func:`~lqft_lab.studies.u1.run_u1_algorithm` from the same seed; τ_int(Q)
    and its lower-bound flag are the run's own (``U1Run.tau_Q``, ``tau_Q_lower_bound``).
    The seconds per step include the discarded ``thermalize`` steps' share of the run.

    Raises:
        TypeError, ValueError: as :func:`~lqft_lab.studies.u1.run_u1_algorithm`.
    """
    from .u1.chains import run_u1_algorithm

    names = {"hmc": "HMC", "flow": "flow-MH", "flow_heatbath": "flow-MH + heatbath"}
    algorithms = ["hmc"] if model is None else list(names)
    rows = []
    for algorithm in algorithms:
        run = run_u1_algorithm(algorithm, beta, L, steps, chains, model=model,
                               thermalize=thermalize, seed=seed, device=device,
                               progress=progress)  # fmt: skip
        acceptance = math.nan if algorithm == "hmc" else run.acceptance
        # U1Run already analysed Q and applies bill_row's rule (frozen or unconverged: a
        # lower bound); its own figures, not a second Γ-method pass over the same series.
        rows.append(BillRow(names[algorithm], 1, acceptance, run.tau_Q,
                            run.seconds / (steps + thermalize), run.tau_Q_lower_bound))  # fmt: skip
    return rows


def bill_table(rows, baseline: str | None = None) -> str:
    """The :class:`BillRow` s as a markdown table, with each cost's gain over ``baseline``.

    A lower bound on τ_int is printed ``≥``; the cost is then a lower bound too, and a gain
    computed from it an upper bound (``≤``), or a lower bound (``≥``) for a row measured
    against a baseline that is itself a lower bound.
    """
    rows = list(rows)
    base = next((r for r in rows if r.method == baseline), None)
    lines = [
        "| method | rungs | acceptance | τ_int(Q) [steps] | ms per step "
        "| s per independent Q | gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        bound = "≥ " if r.lower_bound else ""
        if base is None:
            gain = "—"
        else:
            sign = {(False, False): "", (True, False): "≤ ", (False, True): "≥ "}.get(
                (r.lower_bound, base.lower_bound), "~ "
            )
            gain = f"{sign}{base.cost / r.cost:.1f}×"
        acc = "—" if math.isnan(r.acceptance) else f"{r.acceptance:.2f}"
        lines.append(
            f"| {r.method} | {r.rungs} | {acc} | {bound}{r.tau_int:.1f} "
            f"| {1e3 * r.seconds_per_step:.1f} | {bound}{r.cost:.3f} | {gain} |"
        )
    return "\n".join(lines)
