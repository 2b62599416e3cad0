"""A dashboard for Markov chains: live acceptance and observables, then the Γ-method analysis.

Use it as ``run_chain``'s callback, then hand it the finished chain::

    dash = SamplingDashboard(["phi2", "chi"])
    dash                                    # live plots (or nothing yet, headless)
    chain = run_chain(sampler, x0, 10_000, observables=obs, callback=dash.callback)
    dash.finish(chain)                      # traces, Γ(t)/Γ(0), τ_int(W), acceptance, ESS

Threading contract: :meth:`SamplingDashboard.callback` may be called from any thread; it
stores the summary and queues it. When it is called on the main thread (the usual
``run_chain`` in a notebook cell, which blocks the event loop) it also drains the queue into
the plots itself, at most every ``period_ms``, so the plots move during the run; otherwise a
panel periodic callback, started with the dashboard and stopped by :meth:`finish`, drains it.
Headless (:func:`~lqft_lab.widgets.is_headless`) nothing is queued or drawn live; displaying
the dashboard shows one matplotlib figure (the analysis once :meth:`finish` has run).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

import numpy as np

from .. import checks
from ._headless import DisplayMixin, ensure_panel_extension, is_headless
from ._stream import MetricStream
from .plots import plot_autocorrelation, plot_tau_int, plot_trace, plot_training_history

__all__ = ["SamplingDashboard"]


def _numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().double()
    return np.asarray(values, dtype=float)


class SamplingDashboard(DisplayMixin):
    """Live view of ``run_chain`` and the autocorrelation analysis of its result.

    Args:
        observables: names (keys of ``run_chain``'s ``observables``) to follow and analyse.
        period_ms: live refresh period.
        headless: override :func:`~lqft_lab.widgets.is_headless`.
        title: heading of the live layout and the figure.
        unit_range: observables drawn on ``[0, 1]`` live, as the acceptance is (e.g. the
            per-pair swap acceptances of :func:`~lqft_lab.studies.replica_exchange.run_ladder`).

    Attributes:
        data: the live summaries, ``{"step": [...], "acceptance": [...], name: [...]}``.
        results: name → ``GammaResult`` after :meth:`finish`.
        acceptance: mean acceptance of the finished chain.
        ess: normalised ESS of the log-weights given to :meth:`finish`, else ``None``.

    Raises:
        ValueError: (``TypeError`` too, for the wrong kind) naming the argument:
            ``observables`` not names, ``unit_range`` naming another, ``period_ms`` < 0
            (0 drains on every callback), a non-bool ``headless``, a non-string ``title``.
    """

    def __init__(
        self,
        observables: Sequence[str] = (),
        *,
        period_ms: int = 300,
        headless: bool | None = None,
        title: str = "Sampling",
        unit_range: Sequence[str] = (),
    ):
        from .training import _names

        observables = _names("observables", observables)
        self.unit_range = frozenset(_names("unit_range", unit_range))
        unknown = sorted(self.unit_range - set(observables))
        if unknown:
            raise ValueError(f"unit_range names {unknown[0]!r}, which is not among the observables")
        self.observables = tuple(o for o in observables if o not in ("step", "acceptance"))
        self.period_ms = checks.integer("period_ms", period_ms, low=0)
        if not isinstance(title, str):
            raise checks.ArgumentKindError(f"title must be a string, got {title!r:.80}")
        if headless is not None and not isinstance(headless, bool):
            raise checks.ArgumentKindError(
                f"headless must be True, False or None, got {headless!r}"
            )
        self.title = title
        self.headless = is_headless() if headless is None else headless
        self.chain = None
        self.results: dict = {}
        self.notes: list[str] = []
        self.acceptance: float | None = None
        self.ess: float | None = None
        self._handles: list = []
        self._last_drain = 0.0
        self._periodic = None
        self._layout = None
        self._stream = MetricStream(
            ("step", "acceptance", *self.observables), live=not self.headless
        )
        if not self.headless:
            ensure_panel_extension()
            self._build_layout()
            import panel as pn

            self._periodic = pn.state.add_periodic_callback(self.drain, period=self.period_ms)

    # -- data side -------------------------------------------------------------------
    def callback(self, step: int, summary: dict) -> None:
        """``run_chain`` callback: ``callback(step, {"acceptance": ..., name: mean, ...})``."""
        self._stream.push({"step": step, **summary})
        if self.headless or threading.current_thread() is not threading.main_thread():
            return
        now = time.monotonic()
        if now - self._last_drain >= self.period_ms / 1000:
            self.drain()

    @property
    def data(self) -> dict[str, list[float]]:
        return self._stream.data

    @property
    def stream(self) -> MetricStream:
        return self._stream

    def finish(self, chain, log_weights=None, observables: Sequence[str] | None = None):
        """Analyse a finished chain and show it.

        Args:
            chain: a :class:`~lqft_lab.samplers.chain.Chain` (or any object with
                ``observables: {name: (T, B)}``, ``accepted: (T, B)`` and ``every``).
            log_weights: importance log-weights ``logp - logq`` ``(N,)`` of flow samples, for
                the ESS; default ``chain.log_weights`` when the chain has them.
            observables: names to analyse; default the dashboard's, or all of the chain's.

        Returns:
            ``self``.

        Raises:
            ValueError: (``TypeError`` too) for a ``chain`` without ``observables`` and
                ``accepted``, or ``observables`` that are not names.
        """
        from ..analysis import ess, gamma_method
        from .training import _names

        if not (hasattr(chain, "observables") and hasattr(chain, "accepted")):
            raise checks.ArgumentKindError(
                f"chain must be a Chain (observables, accepted), got {type(chain).__name__}"
            )
        if observables is not None:
            observables = _names("observables", observables)
        names = list(observables or self.observables or chain.observables)
        self.chain = chain
        self.results, self.notes = {}, []
        for name in names:
            if name not in chain.observables:
                self.notes.append(f"{name}: not measured in this chain")
                continue
            try:
                self.results[name] = gamma_method(_numpy(chain.observables[name]))  # (T, B)
            except ValueError as err:
                self.notes.append(f"{name}: {err}")
        self.acceptance = float(_numpy(chain.accepted).mean())
        if log_weights is None:
            log_weights = getattr(chain, "log_weights", None)
        self.ess = None if log_weights is None else ess(log_weights)
        if self.headless:
            self._refresh_static()
            return self
        self.drain()
        if self._periodic is not None:
            self._periodic.stop()
            self._periodic = None
        import panel as pn

        self._status_pane.object = self.status
        fig = self.figure()
        self._analysis[:] = [pn.pane.Markdown(self.summary())]
        if fig is not None:
            self._analysis.append(
                pn.pane.Matplotlib(fig, tight=True, format="svg", sizing_mode="stretch_width")
            )
        return self

    show_chain = finish

    @property
    def status(self) -> str:
        row = self._stream.latest()
        if self.chain is not None:
            ess = "–" if self.ess is None else f"{self.ess:.3f}"
            return f"finished · acceptance {self.acceptance:.3f} · ESS {ess}"
        if row is None:
            return "waiting for the chain"
        parts = [f"step {int(row['step'])}", f"acceptance {row['acceptance']:.3f}"]
        parts += [f"{n} {row[n]:.4g}" for n in self.observables if math.isfinite(row[n])]
        return " · ".join(parts)

    def summary(self) -> str:
        """A markdown table of value ± error, τ_int and the window for each observable."""
        lines = ["| observable | value | τ_int | W |", "|---|---|---|---|"]
        for name, r in self.results.items():
            lines.append(
                f"| {name} | {r.value:.6g} ± {r.error:.2g} | "
                f"{r.tau_int:.2f} ± {r.tau_int_error:.2f} | {r.window} |"
            )
        lines += [f"\n{note}" for note in self.notes]
        return "\n".join(lines)

    # -- document side ---------------------------------------------------------------
    def drain(self) -> int:
        """Move queued summaries into the live plots (document thread); returns the count."""
        self._last_drain = time.monotonic()
        n = self._stream.drain()
        if n and self._layout is not None:
            self._status_pane.object = self.status
        return n

    def _build_layout(self) -> None:
        import panel as pn

        self._status_pane = pn.pane.Markdown(self.status, margin=(5, 10))
        columns = ("acceptance", *self.observables)
        plots = [
            pn.pane.HoloViews(
                self._stream.curve(c, unit_range=c == "acceptance" or c in self.unit_range),
                backend="bokeh",
                sizing_mode="stretch_width",
            )
            for c in columns
        ]
        self._analysis = pn.Column(sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.pane.Markdown(f"### {self.title}"),
            self._status_pane,
            pn.GridBox(*plots, ncols=min(3, len(plots)), sizing_mode="stretch_width"),
            self._analysis,
            sizing_mode="stretch_width",
        )

    # -- display ---------------------------------------------------------------------
    def figure(self):
        """The analysis figure after :meth:`finish`, else the live summaries, else ``None``."""
        if self.chain is not None:
            return self._analysis_figure()
        data = self.data
        if not data["step"]:
            return None
        from matplotlib.figure import Figure

        columns = ("acceptance", *self.observables)
        fig = Figure(figsize=(4.0 * len(columns), 3.0), layout="constrained")
        axes = fig.subplots(1, len(columns), squeeze=False)[0]
        plot_training_history(data, columns, ax=list(axes))
        fig.suptitle(f"{self.title}: {self.status}", fontsize="medium")
        return fig

    def _analysis_figure(self):
        """Rows per observable (trace | Γ(t)/Γ(0) | τ_int(W)), then acceptance and numbers."""
        from matplotlib.figure import Figure

        chain, names = self.chain, list(self.results)
        rows = len(names) + 1
        fig = Figure(figsize=(13.0, 2.8 * rows), layout="constrained")
        grid = fig.add_gridspec(rows, 3)
        every = int(getattr(chain, "every", 1))
        for i, name in enumerate(names):
            r = self.results[name]
            ax = plot_trace(chain.observables[name], fig.add_subplot(grid[i, 0]), name, every)
            ax.set_title(f"{name} = {r.value:.5g} ± {r.error:.2g}")
            plot_autocorrelation(r, fig.add_subplot(grid[i, 1]), label=name)
            plot_tau_int(r, fig.add_subplot(grid[i, 2]))
        accepted = _numpy(chain.accepted)
        accepted = accepted.reshape(len(accepted), -1)  # (T, B)
        acc = accepted.mean(axis=1)  # (T,) mean over chains
        ax = fig.add_subplot(grid[rows - 1, 0:2])
        t = np.arange(1, len(acc) + 1) * every
        ax.plot(t, acc, lw=0.7, label="per measurement")
        ax.plot(t, np.cumsum(acc) / np.arange(1, len(acc) + 1), color="C3", label="running mean")
        ax.set(
            xlabel="Monte Carlo step",
            ylabel="acceptance",
            ylim=(0, 1.02),
            title=f"acceptance = {self.acceptance:.3f}",
        )
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        text = fig.add_subplot(grid[rows - 1, 2])
        text.axis("off")
        lines = [
            f"chains B = {accepted.shape[1]}",
            f"measurements T = {len(acc)} (every {every})",
            f"acceptance = {self.acceptance:.3f}",
            "ESS = –" if self.ess is None else f"ESS = {self.ess:.3f}",
        ]
        lines += [
            f"τ_int[{n}] = {r.tau_int:.2f} ± {r.tau_int_error:.2f}" for n, r in self.results.items()
        ]
        lines += self.notes
        text.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize="small")
        fig.suptitle(self.title)
        return fig

    def __repr__(self) -> str:
        mode = "headless" if self.headless else "live"
        return f"<SamplingDashboard ({mode}) {self.status}>"
