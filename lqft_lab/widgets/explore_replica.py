"""Explore notebook 05: the swap acceptance of each pair of a β ladder, plain and flowed.

:class:`ReplicaExplorer` builds the ladder ``β, β - spacing, …`` (``n_rungs`` rungs, the
physical coupling first) on an ``L × L`` torus and, pair by pair, measures the swap
acceptance ``⟨min(1, e^r)⟩`` on ``n_steps`` independent exact draws of both rungs
(:func:`~lqft_lab.samplers.sample_u1_exact`, float64, from
``torch.Generator().manual_seed(seed)``), beside the erfc prediction from the exact energy
variances (:func:`~lqft_lab.exact.u1.u1_swap_acceptance`). With ``maps = "on"`` it first
trains a T-REX map for the pair (:func:`~lqft_lab.studies.replica_exchange.identity_flow`,
``map_steps`` steps of :func:`~lqft_lab.studies.replica_exchange.train_replica_map`) and
measures the flowed swaps on the same draws. Exact draws make every pair's number
independent of any chain: what a ladder of these rungs would accept once in equilibrium.

The state it reports is plain data: ``{"betas", "L", "maps", "plain" (per pair),
"plain_err", "mapped" (per pair, NaN where not yet or with maps off), "predicted",
"detail"}``.

References:
    R. Abbott et al., arXiv:2404.11674 (T-REX).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import checks
from ..actions import U1WilsonAction
from ..exact.u1 import u1_swap_acceptance
from ..samplers import sample_u1_exact
from .explore import Explorer, Field

__all__ = ["ReplicaExplorer"]


class MapExplorer(Explorer):
    """An explorer that trains U(1) maps between couplings (notebooks 05 and 06): the
    maps' training steps and layers and the seed as keyword arguments, and ``L`` a multiple
    of 4 (the maps' stripes).

    Args:
        map_steps: training steps of each map.
        map_layers: coupling layers of each map.
        seed: seeds the draws and the maps.
        **kwargs: passed to :class:`~lqft_lab.widgets.explore.Explorer`.
    """

    def __init__(self, *, map_steps: int = 60, map_layers: int = 8, seed: int = 0, **kwargs):
        self.map_steps = checks.integer("map_steps", map_steps, low=1)
        self.map_layers = checks.integer("map_layers", map_layers, low=1)
        self.seed = checks.integer("seed", seed, low=0, high=2**62)
        super().__init__(**kwargs)

    def check(self, params: dict) -> dict:
        """``L`` a multiple of 4 (a sentence naming the knob)."""
        if params["L"] % 4:
            raise ValueError(f"L must be a multiple of 4 (the maps' stripes), got {params['L']}")
        return params


class ReplicaExplorer(MapExplorer):
    """Swap acceptance per pair of a β ladder, plain and with trained maps, on exact draws.

    Knobs: ``beta`` (the physical rung), ``L`` (a multiple of 4, 4 to 32), ``n_rungs``
    (2 to 16), ``spacing`` (``Δβ`` between rungs; the ladder must stay at ``β >= 0``),
    ``maps`` (``"off"`` or ``"on"``) and ``n_steps`` (the exact draws of each rung per
    pair). The defaults (β = 6, L = 8, five rungs 0.5 apart, maps off, 512 draws) take about
    a second; each map adds a few seconds.

    Args (of :class:`MapExplorer`):
        map_steps, map_layers: the T-REX maps' training steps (60) and coupling layers.
        seed: seeds the draws and the maps.
        **kwargs: passed to :class:`~lqft_lab.widgets.explore.Explorer`.

    Raises:
        ValueError: (``TypeError`` too) naming the argument.
    """

    title = "Replica exchange: swap acceptance per pair"
    fields = {
        "beta": Field("β (physical rung)", float, 6.0, low=0.0, high=50.0),
        "L": Field("L (multiple of 4)", int, 8, low=4, high=32),
        "n_rungs": Field("rungs", int, 5, low=2, high=16),
        "spacing": Field("Δβ between rungs", float, 0.5, low=0.01, high=10.0),
        "maps": Field("T-REX maps", str, "off", choices=("off", "on")),
        "n_steps": Field("sampling steps (exact draws per rung)", int, 512, low=2, high=16384),
    }
    figsize = (9.0, 3.4)

    def check(self, params: dict) -> dict:
        """``L`` a multiple of 4 and the ladder at ``β >= 0`` (sentences naming the knob)."""
        params = super().check(params)
        lowest = params["beta"] - (params["n_rungs"] - 1) * params["spacing"]
        if lowest < 0:
            raise ValueError(
                f"spacing {params['spacing']} with {params['n_rungs']} rungs takes the ladder "
                f"below β = 0 (to {lowest:g}): lower the spacing or the rungs"
            )
        return params

    def work(self, params, report, stopped) -> None:
        """Pair by pair: exact draws of both rungs, plain swaps, and a trained map's."""
        from ..samplers.replica_exchange import swap_log_ratio
        from ..studies.replica_exchange import identity_flow, train_replica_map

        L, maps, n = params["L"], params["maps"] == "on", params["n_steps"]
        betas = [params["beta"] - k * params["spacing"] for k in range(params["n_rungs"])]
        n_pairs = len(betas) - 1
        state = {
            "betas": betas,
            "L": L,
            "maps": params["maps"],
            "plain": [math.nan] * n_pairs,
            "plain_err": [math.nan] * n_pairs,
            "mapped": [math.nan] * n_pairs,
            "predicted": [
                u1_swap_acceptance(a, b, L) for a, b in zip(betas, betas[1:], strict=False)
            ],
        }
        generator = torch.Generator().manual_seed(self.seed)
        for i in range(n_pairs):
            if stopped():
                return
            a, b = U1WilsonAction(betas[i]), U1WilsonAction(betas[i + 1])
            lower = sample_u1_exact(n, L, betas[i], generator, dtype=torch.float64)
            upper = sample_u1_exact(n, L, betas[i + 1], generator, dtype=torch.float64)
            with torch.no_grad():
                plain = swap_log_ratio(a, b, lower, upper)[0]
            accept = plain.exp().clamp(max=1)
            state["plain"][i] = accept.mean().item()
            state["plain_err"][i] = accept.std().item() / math.sqrt(n)
            if maps:
                flow = identity_flow(L, n_layers=self.map_layers, seed=self.seed + i)
                beta_i = betas[i]
                train_replica_map(
                    flow,
                    a,
                    b,
                    lambda n, g, beta_i=beta_i: sample_u1_exact(
                        n, L, beta_i, g, dtype=torch.float64
                    ),
                    n_steps=self.map_steps,
                    lr=3e-3,
                    seed=self.seed + i,
                )
                with torch.no_grad():
                    mapped = swap_log_ratio(a, b, lower, upper, flow)[0]
                state["mapped"][i] = mapped.exp().clamp(max=1).mean().item()
            state["detail"] = f"pair {i + 1} / {n_pairs}"
            report({k: (list(v) if isinstance(v, list) else v) for k, v in state.items()})

    def draw(self, fig, state) -> None:
        """Bars per pair: plain (with its error), mapped, and the erfc prediction."""
        ax = fig.subplots()
        n = len(state["plain"])
        x = np.arange(n)
        width = 0.38 if state["maps"] == "on" else 0.6
        ax.bar(x - (width / 2 if state["maps"] == "on" else 0), state["plain"], width,
               yerr=state["plain_err"], color="C0", label="plain swaps (exact draws)")  # fmt: skip
        if state["maps"] == "on":
            ax.bar(x + width / 2, state["mapped"], width, color="C2", label="T-REX map")
        ax.plot(x, state["predicted"], "k_", ms=20, mew=2, label="erfc prediction (plain)")
        betas = state["betas"]
        ax.set_xticks(x, [f"{betas[i]:g}↔{betas[i + 1]:g}" for i in range(n)], fontsize=8)
        ax.set(ylim=(0, 1.05), xlabel="pair (β)", ylabel="swap acceptance",
               title=f"L = {state['L']}, {len(betas)} rungs")  # fmt: skip
        ax.legend(fontsize="small", loc="lower left")
