"""Boundary tests of replica exchange: bad ladders, samplers, maps and starts are refused by
name before anything runs; a valid ladder on the tiniest lattice steps to finite numbers."""

from __future__ import annotations

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

from .harness import assert_finite, refuses

COVERED = {
    f"lqft_lab.samplers.{name}"
    for name in ["ReplicaExchange", "ReplicaExchangeState", "ReplicaExchangeInfo", "IdentityMap"]
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
