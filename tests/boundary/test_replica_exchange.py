"""Boundary tests of replica exchange: bad ladders, samplers, maps and starts are refused by
name before anything runs; a valid ladder on the tiniest lattice steps to finite numbers."""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions import U1WilsonAction
from lqft_lab.samplers import (
    IdentityMap,
    ReplicaExchange,
    ReplicaExchangeInfo,
    ReplicaExchangeState,
    U1Heatbath,
    run_chain,
)
from lqft_lab.studies.replica_exchange import (
    LadderRun,
    identity_flow,
    run_ladder,
    swap_log_ratios,
    train_replica_map,
)

from .harness import assert_finite, refuses

COVERED = {
    *(
        f"lqft_lab.samplers.{name}"
        for name in [
            "ReplicaExchange",
            "ReplicaExchangeState",
            "ReplicaExchangeInfo",
            "IdentityMap",
        ]
    ),
    *(
        f"lqft_lab.studies.replica_exchange.{name}"
        for name in [
            "LadderRun",
            "run_ladder",
            "identity_flow",
            "train_replica_map",
            "swap_log_ratios",
        ]
    ),
}

ACTIONS = [U1WilsonAction(2.0), U1WilsonAction(1.0)]
SAMPLERS = [U1Heatbath(a) for a in ACTIONS]
X = torch.zeros(2, 2, 2, 2, dtype=torch.float64)


@pytest.mark.parametrize(
    "actions, samplers, maps, name",
    [
        (ACTIONS[:1], SAMPLERS[:1], None, "actions"),
        ("ab", SAMPLERS, None, "actions"),
        (ACTIONS, SAMPLERS[:1], None, "samplers"),
        (ACTIONS, [SAMPLERS[0], "heatbath"], None, "samplers"),
        ([ACTIONS[0], 2.0], SAMPLERS, None, "actions"),
        (ACTIONS, SAMPLERS, [None, None], "maps"),
        (ACTIONS, SAMPLERS, [object()], "maps"),
        (ACTIONS, SAMPLERS, torch.zeros(1), "maps"),
    ],
)
def test_replica_exchange_refuses_bad_ladders(actions, samplers, maps, name):
    refuses(ReplicaExchange, name, actions, samplers, maps)


def test_replica_exchange_refuses_a_bad_translate_flag():
    refuses(ReplicaExchange, "translate", ACTIONS, SAMPLERS, translate=1)


def test_replica_exchange_refuses_bad_starts_and_is_finite():
    rex = ReplicaExchange(ACTIONS, SAMPLERS, [IdentityMap()])
    refuses(rex.init, "x", [X])  # one tensor per rung expected
    refuses(rex.init, "x", "links")
    refuses(rex.init, "x", [X, X[:1]])  # rungs of different batch
    refuses(rex.init, "theta", X.clone().fill_(float("nan")))
    chain = run_chain(rex, X, 4, torch.Generator().manual_seed(0))
    state = chain.final
    assert isinstance(state, ReplicaExchangeState) and state.steps == 4
    _, info = rex.step(state, torch.Generator().manual_seed(1))
    assert isinstance(info, ReplicaExchangeInfo)
    assert_finite((chain.accepted, state.x, info.rung_accepted))
    assert repr(rex).startswith("ReplicaExchange(2 rungs")


# ============================================================== studies


def test_run_ladder_refuses_bad_input_and_records_finite_numbers():
    rex = ReplicaExchange(ACTIONS, SAMPLERS)
    refuses(run_ladder, "sampler", SAMPLERS[0], X, 2)
    refuses(run_ladder, "n_steps", rex, X, 0)
    refuses(run_ladder, "thermalize", rex, X, 2, thermalize=-1)
    refuses(run_ladder, "observables", rex, X, 2, observables=[len])
    refuses(run_ladder, "observables", rex, X, 2, observables={"q": 3})
    refuses(run_ladder, "callback", rex, X, 2, callback="print")
    refuses(run_ladder, "progress", rex, X, 2, progress=1)
    seen = []
    gen, record = torch.Generator().manual_seed(0), lambda step, summary: seen.append(step)
    run = run_ladder(rex, X, 3, gen, {"s": ACTIONS[0]}, callback=record, callback_every=2)
    assert isinstance(run, LadderRun) and seen == [2, 3]
    assert run.observables["s"].shape == (3, 2, 2) and run.walker.shape == (3, 2, 2)
    assert_finite((run.acceptance(), run.identity_gaps(), run.positions(1).double()))


def test_replica_maps_refuse_bad_input():
    refuses(identity_flow, "L", 6)
    refuses(identity_flow, "n_layers", 4, n_layers=0)
    flow = identity_flow(4, n_layers=1, hidden=(2,))
    draw = lambda n, g: torch.zeros(n, 2, 4, 4, dtype=torch.float64)  # noqa: E731
    refuses(train_replica_map, "flow", "f", ACTIONS[0], ACTIONS[1], draw)
    refuses(train_replica_map, "source", flow, 1.0, ACTIONS[1], draw)
    refuses(train_replica_map, "draw", flow, ACTIONS[0], ACTIONS[1], None)
    refuses(train_replica_map, "n_steps", flow, ACTIONS[0], ACTIONS[1], draw, n_steps=0)
    refuses(train_replica_map, "batch_size", flow, ACTIONS[0], ACTIONS[1], draw, batch_size=1)
    refuses(train_replica_map, "lr", flow, ACTIONS[0], ACTIONS[1], draw, lr=0.0)
    refuses(train_replica_map, "draw_target", flow, ACTIONS[0], ACTIONS[1], draw, draw_target=2)
    history = train_replica_map(flow, ACTIONS[0], ACTIONS[1], draw, n_steps=2, batch_size=2,
                                draw_target=draw, log_every=1)  # fmt: skip
    assert len(history) == 2 and all(math.isfinite(e["acceptance"]) for e in history)
    rex = ReplicaExchange(ACTIONS, SAMPLERS, [flow])
    x = torch.zeros(2, 2, 4, 4, dtype=torch.float64)
    assert_finite(swap_log_ratios(rex, 0, x, x))
