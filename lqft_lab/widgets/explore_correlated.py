"""Explore notebook 06: one coupling derivative ``d⟨O⟩/dβ`` by five estimators, side by side.

:class:`CorrelatedExplorer` runs :func:`~lqft_lab.studies.correlated.fh_estimates` at one
``(β, L)``: ``n_steps`` exact independent draws at ``β`` (float64, seeded with ``seed``)
that every estimator is evaluated on, and from them ``d⟨cos θ_P⟩/dβ`` or ``dχ_t/dβ`` by

* independent ensembles at ``β ± δ`` (``n_steps/2`` fresh draws each),
* the covariance ``Cov(O, E)``,
* reweighting the draws at ``β`` to ``β ± δ``,
* the flowed difference (maps ``f_±`` trained first by
  :func:`~lqft_lab.studies.correlated.train_fh_maps`, ``map_steps`` steps; only with
  ``flowed = "on"``),
* the linearised flow (Stein), its loop-field coefficients fitted on
  ``min(n_steps, 2048)`` other draws (as many as are evaluated, capped at notebook 06's
  fast-mode fit; never fewer than the 64 :func:`fh_estimates` needs, since
  ``n_steps >= 64``).

It draws each estimate with its error against the exact derivative (solid line,
:func:`~lqft_lab.exact.u1_plaquette_derivative`,
:func:`~lqft_lab.exact.u1_susceptibility_derivative`) and the exact difference quotient
``[⟨O⟩_{β+δ} - ⟨O⟩_{β-δ}]/2δ`` (dashed), which the three finite-``δ`` estimators target;
beside it, each estimator's variance per configuration on a log scale: how many draws it
needs for a given error.

The state it reports is plain data: ``{"beta", "L", "delta", "observable", "methods"
(the estimators run, in the study's order), "values", "errors", "variances" (one per
method; NaN before the estimates), "exact", "exact_difference", "detail"}``.

References:
    R. Abbott et al., arXiv:2401.10874 (correlated ensembles by flows; Feynman–Hellmann).
"""

from __future__ import annotations

import math

import numpy as np

from .explore import Field
from .explore_replica import MapExplorer

__all__ = ["CorrelatedExplorer"]


#: Row labels of the figure.
LABELS = {
    "independent": "independent β ± δ",
    "covariance": "Cov(O, E)",
    "reweighted": "reweighted",
    "flowed": "flowed (f±)",
    "stein": "Stein (linearised)",
}

#: The observable's name on the axis.
SYMBOLS = {"plaquette": r"$d\langle\cos\theta_P\rangle/d\beta$", "chi_t": r"$d\chi_t/d\beta$"}


class CorrelatedExplorer(MapExplorer):
    """``d⟨O⟩/dβ`` by the five Feynman–Hellmann estimators on the same exact draws.

    Knobs: ``beta`` (0.5 to 20), ``L`` (a multiple of 4, 4 to 32), ``delta`` (the
    finite-difference half-step, 0.01 to 2, with ``β - δ >= 0``), ``observable``
    (``"plaquette"`` or ``"chi_t"``), ``flowed`` (``"off"`` or ``"on"``: train the maps
    ``f_±`` for the flowed estimator first) and ``n_steps`` (the exact draws at ``β``). The
    defaults (β = 6, L = 8, δ = 0.25, flowed off, 1024 draws) take about half a second;
    the maps add about ten seconds at L = 8.

    Args (of :class:`~lqft_lab.widgets.explore_replica.MapExplorer`):
        map_steps, map_layers: the maps' training steps (60) and coupling layers.
        seed: seeds the draws and the maps.
        **kwargs: passed to :class:`~lqft_lab.widgets.explore.Explorer`.

    Raises:
        ValueError: (``TypeError`` too) naming the argument.
    """

    title = "Feynman–Hellmann: d⟨O⟩/dβ by five estimators"
    fields = {
        "beta": Field("β", float, 6.0, low=0.5, high=20.0),
        "L": Field("L (multiple of 4)", int, 8, low=4, high=32),
        "delta": Field("δ (half-step)", float, 0.25, low=0.01, high=2.0),
        "observable": Field("observable", str, "plaquette", choices=("plaquette", "chi_t")),
        "flowed": Field("flowed maps f±", str, "off", choices=("off", "on")),
        "n_steps": Field("sampling steps (exact draws)", int, 1024, low=64, high=65536),
    }
    figsize = (9.0, 3.4)

    def check(self, params: dict) -> dict:
        """``L`` a multiple of 4 and ``β - δ >= 0`` (sentences naming the knobs)."""
        params = super().check(params)
        if params["beta"] - params["delta"] < 0:
            raise ValueError(
                f"delta {params['delta']:g} takes β - δ below 0 at beta {params['beta']:g}: "
                f"lower delta or raise beta"
            )
        return params

    def work(self, params, report, stopped) -> None:
        """Train the maps (when flowed is on), then every estimator on one set of draws."""
        from ..studies.correlated import METHODS, exact_targets, fh_estimates, train_fh_maps

        beta, L, delta, n = params["beta"], params["L"], params["delta"], params["n_steps"]
        observable, flowed = params["observable"], params["flowed"] == "on"
        exact, exact_difference = exact_targets(beta, L, delta)
        methods = [m for m in METHODS if flowed or m != "flowed"]
        state = {
            "beta": beta,
            "L": L,
            "delta": delta,
            "observable": observable,
            "methods": methods,
            "values": [math.nan] * len(methods),
            "errors": [math.nan] * len(methods),
            "variances": [math.nan] * len(methods),
            # the exact lines are known before any draw, so the first figure shows them
            "exact": exact[observable],
            "exact_difference": exact_difference[observable],
        }
        maps = None
        if flowed:
            report(state | {"detail": f"training maps f± ({self.map_steps} steps each)"})
            maps = train_fh_maps(
                beta, delta, L, n_steps=self.map_steps, n_layers=self.map_layers, seed=self.seed
            )
        if stopped():
            return
        report(state | {"detail": f"{n} exact draws at β = {beta:g}"})
        result = fh_estimates(
            beta,
            L,
            n,
            delta=delta,
            train_draws=min(n, 2048),
            maps=maps,
            seed=self.seed,
        )
        estimates = result.estimates[observable]
        report(
            state
            | {
                "methods": list(estimates),
                "values": [e.value for e in estimates.values()],
                "errors": [e.error for e in estimates.values()],
                "variances": [e.variance for e in estimates.values()],
                "detail": f"{n} draws, {len(estimates)} estimators",
            }
        )

    def draw(self, fig, state) -> None:
        """Each estimate ± error against both exact targets; variance per configuration."""
        ax, ax_var = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
        methods = state["methods"]
        y = np.arange(len(methods))[::-1]  # the first method on top
        from ..studies.correlated import METHODS

        colors = [f"C{METHODS.index(m)}" for m in methods]
        rows = zip(y, state["values"], state["errors"], colors, strict=True)
        for yi, value, error, color in rows:
            ax.errorbar(value, yi, xerr=error, fmt="o", color=color, capsize=3)
        ax.axvline(state["exact"], color="k", lw=1, label="exact derivative")
        ax.axvline(state["exact_difference"], color="0.45", lw=1.2, ls="--",
                   label=f"exact difference quotient (δ = {state['delta']:g})")  # fmt: skip
        ax.set_yticks(y, [LABELS.get(m, m) for m in methods])
        ax.set(xlabel=SYMBOLS.get(state["observable"], state["observable"]),
               title=f"β = {state['beta']:g}, L = {state['L']}")  # fmt: skip
        ax.legend(fontsize="small", loc="best")

        variances = np.asarray(state["variances"], dtype=float)
        shown = np.isfinite(variances) & (variances > 0)
        ax_var.barh(y[shown], variances[shown], color=np.asarray(colors)[shown])
        ax_var.set_xscale("log")
        ax_var.set(xlabel="variance per configuration", title="smaller: fewer draws")
