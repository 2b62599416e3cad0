"""A live dashboard for :class:`~lqft_lab.train.Trainer`: streaming metrics, Start and Stop.

Threading contract (live mode):

* :meth:`TrainingDashboard.start` (or the Start button) runs ``trainer.train`` in a daemon
  thread, so the kernel stays responsive and Stop works while training.
* The trainer calls the dashboard's callback from the training thread every ``log_every``
  steps; the callback only stores the row and puts it on a thread-safe queue
  (:class:`~lqft_lab.widgets._stream.MetricStream`). It never touches Bokeh or panel.
* A panel periodic callback (every ``period_ms``, on the kernel's event loop, i.e. the
  document's thread) calls :meth:`TrainingDashboard.drain`, which sends the queued rows to
  the holoviews ``Buffer`` and updates the status line and buttons. It stops itself once
  training has ended and the queue is empty.

Headless mode (:func:`~lqft_lab.widgets.is_headless`): :meth:`start` trains synchronously in
the calling thread, no thread or periodic callback is created, no panel object is built,
and displaying the dashboard shows one matplotlib figure of everything collected.

Example:
    >>> dash = TrainingDashboard(trainer, n_steps=2000)   # doctest: +SKIP
    >>> dash.start()                                       # doctest: +SKIP
    >>> dash                                               # live plots, or a figure
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence

from .. import checks
from ._compat import widget
from ._headless import DisplayMixin, ensure_panel_extension, is_headless
from ._stream import MetricStream
from .plots import UNIT_METRICS, plot_training_history

__all__ = ["TrainingDashboard"]

log = logging.getLogger(__name__)


def _names(argument: str, names) -> tuple[str, ...]:
    """``names`` as a tuple of strings (one string is one name, not its letters)."""
    if isinstance(names, str):
        return (names,)
    try:
        names = tuple(names)
    except TypeError:
        raise checks.ArgumentKindError(
            f"{argument} must be a list of names, got {names!r:.80}"
        ) from None
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise checks.ArgumentKindError(f"{argument} must be names (strings), got {bad!r:.80}")
    return names


def _fmt(value, spec: str = ".3f") -> str:
    return "–" if value is None or not math.isfinite(value) else format(value, spec)


class TrainingDashboard(DisplayMixin):
    """Watch, start and stop a :class:`~lqft_lab.train.Trainer`.

    Args:
        trainer: the trainer; the dashboard registers a callback on it and copies any
            ``trainer.history`` it already has.
        n_steps: total steps to train to (``start`` resumes up to it); default
            ``trainer.config.n_steps``.
        metrics: metric keys to plot against the step, one plot each.
        period_ms: how often the live plots are refreshed.
        headless: override :func:`~lqft_lab.widgets.is_headless`.
        title: heading of the live layout.

    Attributes:
        data: every metric row collected, ``{"step": [...], "loss": [...], ...}`` (a copy).
        error: the exception that ended a background run, or ``None``.

    Raises:
        ValueError: (``TypeError`` too, for the wrong kind) naming the argument: a
            ``trainer`` without ``config``, ``step`` and ``add_callback``, ``n_steps`` not a
            positive integer, ``metrics`` not names (one name is accepted as a string) or
            only ``step``/``time``, ``period_ms`` < 1, a non-bool ``headless``, a non-string
            ``title``.
    """

    def __init__(
        self,
        trainer,
        n_steps: int | None = None,
        metrics: Sequence[str] = ("loss", "ess", "acceptance"),
        *,
        period_ms: int = 300,
        headless: bool | None = None,
        title: str = "Training",
    ):
        if not all(hasattr(trainer, a) for a in ("config", "step", "add_callback", "train")):
            raise checks.ArgumentKindError(
                f"trainer must be a lqft_lab.train.Trainer, got {type(trainer).__name__}"
            )
        n_steps = trainer.config.n_steps if n_steps is None else n_steps
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
        metrics = tuple(m for m in _names("metrics", metrics) if m not in ("step", "time"))
        if not metrics:
            raise ValueError("metrics must name at least one metric besides 'step' and 'time'")
        if not isinstance(title, str):
            raise checks.ArgumentKindError(f"title must be a string, got {title!r:.80}")
        if headless is not None and not isinstance(headless, bool):
            raise checks.ArgumentKindError(
                f"headless must be True, False or None, got {headless!r}"
            )
        self.trainer = trainer
        self.n_steps = n_steps
        self.metrics = metrics
        self.period_ms = checks.integer("period_ms", period_ms, low=1)
        self.title = title
        self.headless = is_headless() if headless is None else headless
        self.error: BaseException | None = None
        self._handles: list = []
        self._thread: threading.Thread | None = None
        self._periodic = None
        self._last: dict = {}
        self._stream = MetricStream(("step", *metrics, "time"), live=not self.headless)
        for row in list(getattr(trainer, "history", [])):
            self._on_metrics(trainer, row)
        trainer.add_callback(self._on_metrics)
        self._layout = None
        if not self.headless:
            ensure_panel_extension()
            self._build_layout()

    # -- data side (any thread) ------------------------------------------------------
    def _on_metrics(self, trainer, metrics: dict) -> None:
        """Trainer callback, called from the training thread: store and queue, nothing else."""
        self._last = dict(metrics)
        self._stream.push(metrics)

    @property
    def data(self) -> dict[str, list[float]]:
        return self._stream.data

    @property
    def stream(self) -> MetricStream:
        """The underlying rows and (live) holoviews ``Buffer``."""
        return self._stream

    @property
    def running(self) -> bool:
        thread = self._thread
        return (thread is not None and thread.is_alive()) or bool(self.trainer.running)

    @property
    def status(self) -> str:
        """One line: state, step, loss, ESS (of the training batch) and wall time."""
        step = self.trainer.step
        if self.error is not None:
            state = f"error: {self.error}"
        elif self.running:
            state = "running"
        elif step >= self.n_steps:
            state = "done"
        else:
            state = "stopped" if step else "ready"
        m = self._last
        return (
            f"{state} · step {step} / {self.n_steps} · loss {_fmt(m.get('loss'))}"
            f" · ESS {_fmt(m.get('ess'))} · {_fmt(m.get('time'), '.1f')} s"
        )

    # -- control ---------------------------------------------------------------------
    def start(self) -> TrainingDashboard:
        """Train up to ``n_steps``: in a background thread (live) or right here (headless).

        A no-op while training is running or when ``n_steps`` have been done. Headless, the
        trainer's exceptions propagate; live, they are kept in :attr:`error`, shown in the
        status line, and re-raised by :meth:`join`.
        """
        if self.running:
            return self
        self.error = None
        if self.headless:
            self._train()
            self._refresh_static()
            return self
        self._thread = threading.Thread(
            target=self._train_in_thread, name="lqft_lab-training", daemon=True
        )
        self._thread.start()
        self._start_periodic()
        self._sync_widgets()
        return self

    def stop(self) -> None:
        """Ask training to end after the current step (safe from any thread)."""
        self.trainer.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the training thread; returns ``True`` when it has finished.

        Raises:
            Exception: the exception that ended the background run, if any.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        done = thread is None or not thread.is_alive()
        if done and self.error is not None:
            raise self.error
        return done

    def _train(self) -> None:
        remaining = self.n_steps - self.trainer.step
        if remaining > 0:
            self.trainer.train(n_steps=remaining, progress=False)

    def _train_in_thread(self) -> None:
        try:
            self._train()
        except Exception as err:  # shown in the status line, re-raised by join()
            log.exception("training stopped by an exception")
            self.error = err

    # -- document side (kernel thread only) ------------------------------------------
    def _start_periodic(self) -> None:
        if self._periodic is None:
            import panel as pn

            self._periodic = pn.state.add_periodic_callback(self.drain, period=self.period_ms)

    def drain(self) -> int:
        """Move queued metrics into the live plots and refresh the status (document thread).

        Returns:
            The number of rows drained.
        """
        n = self._stream.drain()
        self._sync_widgets()
        if self._periodic is not None and not self.running and self._stream.pending == 0:
            self._periodic.stop()
            self._periodic = None
        return n

    def _build_layout(self) -> None:
        import panel as pn

        self._start_button = widget(pn.widgets.Button, "Start", "primary", width=90)
        self._stop_button = widget(pn.widgets.Button, "Stop", "danger", width=90, disabled=True)
        self._start_button.on_click(lambda event: self.start())
        self._stop_button.on_click(lambda event: self.stop())
        self._status_pane = pn.pane.Markdown(self.status, margin=(5, 10))
        plots = [
            pn.pane.HoloViews(
                self._stream.curve(m, unit_range=m in UNIT_METRICS),
                backend="bokeh",
                sizing_mode="stretch_width",
            )
            for m in self.metrics
        ]
        self._layout = pn.Column(
            pn.pane.Markdown(f"### {self.title}"),
            pn.Row(self._start_button, self._stop_button, self._status_pane),
            pn.GridBox(*plots, ncols=min(3, len(plots)), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def _sync_widgets(self) -> None:
        if self._layout is None:
            return
        running = self.running
        self._status_pane.object = self.status
        self._start_button.disabled = running
        self._stop_button.disabled = not running

    # -- display ---------------------------------------------------------------------
    def figure(self):
        """A matplotlib ``Figure`` with one axis per metric, or ``None`` before any data."""
        data = self.data
        if not data["step"]:
            return None
        from matplotlib.figure import Figure

        n = len(self.metrics)
        fig = Figure(figsize=(4.0 * n, 3.0), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False)[0]
        plot_training_history(data, self.metrics, ax=list(axes))
        fig.suptitle(f"{self.title}: {self.status}", fontsize="medium")
        return fig

    def __repr__(self) -> str:
        mode = "headless" if self.headless else "live"
        return f"<TrainingDashboard ({mode}) {self.status}>"
