"""Notebook 04's Explore widget refuses bad knobs and options, naming them, and returns
finite numbers for every valid one (a two-configuration run on 2×2)."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from lqft_lab.widgets import SchwingerExplorer

from .harness import BOUNDARY, assert_finite, bad_integers, bad_reals, refuses

COVERED = {"lqft_lab.widgets.SchwingerExplorer"}


def widget_integers(strategy):
    """Bad values of an integer knob, where an integral float (``3.0``) is accepted as ``3``."""
    return strategy.filter(lambda v: not (isinstance(v, float) and v.is_integer()))


@BOUNDARY
@given(
    beta=bad_reals(0, 100),
    L=widget_integers(bad_integers(2, 12)),
    n=widget_integers(bad_integers(1, 2000)),
    option=bad_integers(low=1),
    seed=bad_integers(0, 2**62),
)
def test_schwinger_explorer_refuses_at_construction(beta, L, n, option, seed):
    refuses(SchwingerExplorer, "beta", headless=True, beta=beta)
    refuses(SchwingerExplorer, "L", headless=True, L=L)
    refuses(SchwingerExplorer, "n_steps", headless=True, n_steps=n)
    refuses(SchwingerExplorer, "chunk", headless=True, chunk=option)
    refuses(SchwingerExplorer, "n_bins", headless=True, n_bins=option)
    refuses(SchwingerExplorer, "seed", headless=True, seed=seed)
    refuses(SchwingerExplorer, "headless", headless="yes")


@BOUNDARY
@given(kappa=st.one_of(bad_reals(0, 1), st.just(1.0)), L=st.sampled_from([3, 5, 7, 11]))
def test_schwinger_explorer_refuses_before_running(kappa, L):
    explorer = SchwingerExplorer(headless=True)
    refuses(explorer.validate, "kappa", kappa=kappa)
    refuses(explorer.run, "L", L=L)
    assert explorer.state is None and explorer.status == "idle"
    assert explorer.start(kappa=kappa) is False and "kappa" in explorer.message


@BOUNDARY
@given(
    beta=st.floats(0, 100),
    kappa=st.floats(0, 1, exclude_max=True),
    L=st.sampled_from([2, 4]),
)
def test_schwinger_explorer_valid_knobs_give_finite_numbers(beta, kappa, L):
    explorer = SchwingerExplorer(headless=True, chunk=1)
    state = explorer.run(beta=beta, kappa=kappa, L=L, n_steps=2)
    assert explorer.status == "done"
    assert_finite(state)
    assert state["eigenvalues"].shape == (2, 2 * L * L)
    assert 0 < state["ess"][-1] <= 1
