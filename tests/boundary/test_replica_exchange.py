"""Boundary tests of replica exchange: bad ladders, samplers, maps and starts are refused by
name before anything runs; a valid ladder on the tiniest lattice steps to finite numbers."""

from __future__ import annotations

import math

import pytest
import torch

from lqft_lab.actions import U1DefectAction, U1WilsonAction
from lqft_lab.samplers import (
    IdentityMap,
    ReplicaExchange,
    ReplicaExchangeInfo,
    ReplicaExchangeState,
    U1Heatbath,
    run_chain,
    swap_log_ratio,
)
from lqft_lab.studies.replica_exchange import (
    BillRow,
    LadderRun,
    ReplicaSizes,
    acceptance_vs_volume,
    beta_ladder,
    bill_row,
    bill_table,
    chain_bill,
    defect_context,
    defect_ladder,
    exact_draw,
    exact_swap_acceptance,
    heatbath_ladder,
    identity_flow,
    pair_names,
    pair_table,
    pulls_table,
    run_ladder,
    rung_pulls,
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
            "swap_log_ratio",
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
            "ReplicaSizes",
            "acceptance_vs_volume",
            "beta_ladder",
            "defect_ladder",
            "heatbath_ladder",
            "pair_table",
            "rung_pulls",
            "pulls_table",
            "BillRow",
            "bill_row",
            "bill_table",
            "chain_bill",
            "exact_draw",
            "exact_swap_acceptance",
            "defect_context",
            "pair_names",
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
    r, lower, upper = swap_log_ratio(*ACTIONS, x, x, flow)
    torch.testing.assert_close(r, swap_log_ratios(rex, 0, x, x))
    assert_finite((lower.detach(), upper.detach()))


@pytest.mark.parametrize(
    "field, value",
    [("L", 6), ("ladders", 0), ("thermalize", -1), ("heatbath", (4,)), ("beta_low", 7.0),
     ("beta_spacing", 0.0), ("defect_rungs", 1), ("volume_Ls", "8"), ("map_layers", 0),
     ("drrex_rungs", 1), ("baselines", (4,)), ("baselines", (0, 10))],
)  # fmt: skip
def test_replica_sizes_refuse_what_no_run_can_use(field, value):
    refuses(ReplicaSizes, field, **{field: value})
    refuses(ReplicaSizes.for_mode, field, "fast", **{field: value})


def test_replica_helpers_refuse_bad_input_and_are_finite():
    refuses(ReplicaSizes.for_mode, "mode", "slow")
    refuses(ReplicaSizes.for_mode, "ladder", "fast", ladder=3)
    refuses(beta_ladder, "beta_low", 2.0, 3.0, 0.5)
    refuses(beta_ladder, "spacing", 2.0, 1.0, 0.0)
    assert beta_ladder(2.0, 1.0, 0.5) == [2.0, 1.5, 1.0]
    refuses(defect_ladder, "n_rungs", 1)
    assert defect_ladder(3) == [1.0, 0.5, 0.0]
    refuses(acceptance_vs_volume, "Ls", 1.0, 1.5, [1])
    refuses(acceptance_vs_volume, "n_draws", 1.0, 1.5, [4], n_draws=1)
    (row,) = acceptance_vs_volume(1.0, 1.5, [4], n_draws=4)
    assert 0 <= row["measured"] <= 1 and math.isfinite(row["error"])
    refuses(heatbath_ladder, "actions", [ACTIONS[0]])
    rex = heatbath_ladder(ACTIONS)
    run = run_ladder(rex, X, 6, torch.Generator().manual_seed(0), {"s": ACTIONS[0]})
    refuses(pair_table, "run", "run", ["a", "b"])
    refuses(pair_table, "labels", run, ["a"])
    refuses(pair_table, "predictions", run, ["a", "b"], [0.5, 0.5])
    assert pair_table(run, ["a", "b"], [0.5]).count("\n") == 2
    refuses(rung_pulls, "run", None, [0.0, 0.0], "s")
    refuses(rung_pulls, "observable", run, [0.0, 0.0], "plaquette")
    refuses(rung_pulls, "exact", run, [0.0], "s")
    rows = rung_pulls(run, [-8.0, -8.0], "s")
    assert len(rows) == 2 and pulls_table(rows, ["a", "b"]).count("\n") == 3
    refuses(bill_row, "rungs", "x", 0, torch.zeros(4, 2), 1.0)
    refuses(bill_row, "seconds_per_step", "x", 1, torch.zeros(4, 2), 0.0)
    row = bill_row("x", 2, torch.randn(40, 2, generator=torch.Generator().manual_seed(0)), 0.1)
    assert isinstance(row, BillRow) and row.cost > 0
    assert "| x | 2 | — |" in bill_table([row], baseline="x")
    refuses(bill_row, "charge", "x", 1, torch.zeros(4), 1.0)
    refuses(bill_row, "charge", "x", 1, torch.zeros(3, 2), 1.0)
    assert run.identity_pulls().shape == (1, 2)
    refuses(pair_names, "n_rungs", 1)
    refuses(exact_draw, "action", "wilson", 4)
    refuses(exact_draw, "L", ACTIONS[0], 1)
    refuses(exact_draw, "d", U1DefectAction(1.0, 0.0, 5), 4)  # the defect does not fit
    assert exact_draw(U1DefectAction(1.0, 0.0, 2), 4)(3).shape == (3, 2, 4, 4)
    refuses(defect_context, "d", 0, 4)
    refuses(defect_context, "d", 5, 4)
    refuses(defect_context, "L", 2, 1)
    assert defect_context(2, 4).sum() == 2
    refuses(exact_swap_acceptance, "actions", ACTIONS[0], 4)
    refuses(exact_swap_acceptance, "actions", ACTIONS[:1], 4)
    refuses(exact_swap_acceptance, "n_draws", ACTIONS, 4, n_draws=1)
    (a,) = exact_swap_acceptance(ACTIONS, 4, n_draws=4)
    assert 0 <= a <= 1
    refuses(chain_bill, "beta", -1.0, 4, 2, 4)
    refuses(chain_bill, "L", 2.0, 1, 2, 4)
    refuses(chain_bill, "n_chains", 2.0, 4, 0, 4)
    (hmc,) = chain_bill(2.0, 4, 2, 4)
    assert hmc.method == "HMC" and math.isfinite(hmc.cost)
