"""The base of every notebook's Explore widget: turn the knobs, press Run, watch it live.

An explorer is a small form (one input per knob), Run and Stop buttons, a status line and a
matplotlib figure that is redrawn while a computation runs in the background. Each notebook
has one, in ``widgets/explore_<topic>.py``. A subclass promises:

* ``title`` (a heading) and ``fields``: knob name → :class:`Field` (label, type, default,
  allowed choices or range). Values are type-checked here before the subclass sees them.
* ``check(params) -> params``: the physics checks (even ``L``, ``β >= 0``, …). It raises
  ``ValueError`` with a sentence that names the argument, the value and what is accepted.
* ``work(params, report, stopped)``: the computation, in chunks. After each chunk it calls
  ``report(state)`` with plain data (numbers, NumPy arrays, lists; never live tensors that
  the next chunk modifies in place) and returns as soon as ``stopped()`` is true. An optional
  ``state["detail"]`` string (``"step 40 / 200"``) is shown on the status line.
* ``draw(fig, state)``: draws one state into a fresh matplotlib ``Figure``.

What the base provides:

* **Live** (JupyterLab): Run starts ``work`` in a background thread, so the notebook stays
  responsive; a panel periodic callback on the kernel's event loop redraws the figure when a
  new state has arrived (loops don't draw); Stop sets the flag ``stopped()`` reads. Bad
  input never raises from a button: a red alert shows the sentence of the ``ValueError``.
  An exception inside ``work`` ends the run with status ``error`` and its message.
* **Headless** (papermill, tests; :func:`~lqft_lab.widgets.is_headless`): no thread and no
  panel object. :meth:`show` runs once synchronously with the current values and displays
  the static figure, so an executed notebook shows what the widget would have drawn.
* :meth:`run` computes synchronously in any mode and returns the last state, raising
  ``ValueError`` for bad input: what tests and scripts call.

The status line reads ``<status> · <detail>`` with status one of ``idle``, ``running``,
``stopped``, ``done``, ``error`` (the browser test waits on it).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import checks
from ._compat import widget
from ._headless import DisplayMixin, ensure_panel_extension, is_headless

__all__ = ["Field", "Explorer", "STATUSES"]

STATUSES = ("idle", "running", "stopped", "done", "error")


@dataclass(frozen=True)
class Field:
    """One knob of an explorer.

    Args:
        label: what the input is called on screen (``"β"``, ``"L (even)"``).
        kind: ``int``, ``float`` or ``str``.
        default: the value before the user touches it.
        choices: the allowed values (a drop-down), or ``None`` for a free input.
        low, high: inclusive bounds for numbers, or ``None``.

    Raises:
        TypeError, ValueError: for a ``kind`` other than ``int``, ``float``, ``str``, a
            blank label, empty or string ``choices``, non-finite or crossed bounds, or a
            ``default`` that :meth:`coerce` itself would refuse.
    """

    label: str
    kind: type
    default: Any
    choices: Sequence | None = None
    low: float | None = None
    high: float | None = None

    def __post_init__(self):
        if self.kind not in (int, float, str):
            raise ValueError(f"Field kind must be int, float or str, got {self.kind!r}")
        if not isinstance(self.label, str) or not self.label.strip():
            raise checks.ArgumentKindError(f"label must be a non-empty string, got {self.label!r}")
        if self.choices is not None and (
            isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Sequence)
        ):
            raise checks.ArgumentKindError(
                f"choices must be a sequence of values or None, got {self.choices!r}"
            )
        if self.choices is not None and not self.choices:
            raise ValueError("choices must hold at least one value (or be None)")
        for name in ("low", "high"):
            if getattr(self, name) is not None:
                checks.real(name, getattr(self, name))
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low must be <= high, got low={self.low} and high={self.high}")
        self.coerce("default", self.default)  # a knob must start at a value it accepts

    def coerce(self, name: str, value: Any) -> Any:
        """``value`` as this field's type, or a ``ValueError`` naming ``name``."""
        if self.choices is not None:
            if value not in self.choices:
                allowed = ", ".join(map(str, self.choices))
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
            return value
        # numpy numbers count (a value read from an array); bools do not
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if self.kind is int:
            if not isinstance(value, numbers.Integral) and not float(value).is_integer():
                raise ValueError(f"{name} must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if self.low is not None and value < self.low:
            raise ValueError(f"{name} must be >= {self.low:g}, got {value!r}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{name} must be <= {self.high:g}, got {value!r}")
        return value


class Explorer(DisplayMixin):
    """Base class of the notebooks' Explore widgets (see the module docstring).

    Args:
        headless: override :func:`~lqft_lab.widgets.is_headless`.
        period_ms: how often the live figure is refreshed (an integer >= 1).
        **values: starting values of the knobs (over each field's default), each checked by
            its :class:`Field` here (the physics in :meth:`check` is checked at each run).

    Raises:
        ValueError: for an unknown knob or a value its field refuses (naming the knob), a
            ``headless`` that is not a bool or None, or a bad ``period_ms``.

    Attributes:
        values: the knobs' current values (the last validated ones after a run).
        state: the last state ``work`` reported, or ``None``.
        status: one of :data:`STATUSES`.
        message: the last error sentence shown to the user (``""`` when none).
    """

    title: str = "Explore"
    fields: Mapping[str, Field] = {}
    figsize: tuple[float, float] = (9.0, 3.4)

    def __init__(self, *, headless: bool | None = None, period_ms: int = 400, **values):
        unknown = set(values) - set(self.fields)
        if unknown:
            raise ValueError(
                f"unknown knobs {sorted(unknown)} for {type(self).__name__}; "
                f"it has {sorted(self.fields)}"
            )
        values = {name: self.fields[name].coerce(name, v) for name, v in values.items()}
        self.values = {name: f.default for name, f in self.fields.items()} | values
        if headless is not None and not isinstance(headless, bool):
            raise checks.ArgumentKindError(
                f"headless must be True, False or None, got {headless!r}"
            )
        self.headless = is_headless() if headless is None else headless
        self.period_ms = checks.integer("period_ms", period_ms, low=1)
        self.status = "idle"
        self.message = ""
        self._state: Any = None
        self._version = 0
        self._drawn: tuple | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._periodic = None
        self._handles: list = []
        self._layout = None
        if not self.headless:
            ensure_panel_extension()
            self._build_layout()

    # -- what a subclass implements ---------------------------------------------------
    def check(self, params: dict) -> dict:
        """Validate the physics of ``params`` (already type-checked); return them."""
        return params

    def work(self, params: dict, report: Callable[[Any], None], stopped: Callable[[], bool]):
        """Run the computation in chunks, ``report(state)`` after each (see module docstring)."""
        raise NotImplementedError

    def draw(self, fig, state) -> None:
        """Draw ``state`` into the empty matplotlib figure ``fig``."""
        raise NotImplementedError

    # -- running ------------------------------------------------------------------------
    @property
    def state(self) -> Any:
        with self._lock:
            return self._state

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def validate(self, **overrides) -> dict:
        """The current values with ``overrides``, type-checked and passed through ``check``.

        Raises:
            ValueError: naming the bad argument.
        """
        unknown = set(overrides) - set(self.fields)
        if unknown:
            raise ValueError(f"unknown knobs {sorted(unknown)}; use {sorted(self.fields)}")
        merged = self.values | overrides
        params = {name: f.coerce(name, merged[name]) for name, f in self.fields.items()}
        return self.check(params)

    def run(self, **overrides) -> Any:
        """Validate, then compute synchronously in this thread; returns the last state.

        Raises:
            ValueError: for bad input (nothing is run then).
        """
        params = self.validate(**overrides)
        self.stop()
        self._begin(params)
        try:
            self.work(params, self._report, self._stop.is_set)
        except BaseException as err:
            self._finish(err)
            raise
        self._finish(None)
        return self.state

    def start(self, **overrides) -> bool:
        """What Run does: validate the widgets' values (and ``overrides``), then compute,
        in a background thread when live and synchronously when headless. Never raises:
        bad input or a failure sets :attr:`message`. Returns whether a run started."""
        if self._layout is not None:
            overrides = self._widget_values() | overrides
        self.stop()
        try:
            params = self.validate(**overrides)
        except ValueError as err:
            self._show_message(str(err))
            return False
        self._show_message("")
        self._begin(params)
        if self.headless:
            self._target(params)
            self._refresh_static()
            return True
        self._thread = threading.Thread(target=self._target, args=(params,), daemon=True)
        self._thread.start()
        self._start_periodic()
        self._sync_widgets()
        return True

    def stop(self) -> None:
        """Ask a running computation to stop at its next chunk, and wait for it (Stop)."""
        if self.running:
            self._stop.set()
            self.join(timeout=60)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background run; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def show(self) -> None:
        """Display the explorer: the live widget, or (headless) one run and its figure."""
        from IPython.display import display

        if self.headless:
            self.start()
        display(self)

    def _begin(self, params: dict) -> None:
        self.values = dict(params)
        self._stop.clear()
        with self._lock:
            self._state, self._version, self._drawn = None, 0, None
        self.status = "running"

    def _target(self, params: dict) -> None:
        try:
            self.work(params, self._report, self._stop.is_set)
        except Exception as err:  # shown in the widget, never a traceback in the page
            self._finish(err)
        else:
            self._finish(None)

    def _finish(self, err: BaseException | None) -> None:
        if err is not None:
            self.status = "error"
            self._show_message(f"{type(err).__name__}: {err}")
        else:
            self.status = "stopped" if self._stop.is_set() else "done"

    def _report(self, state: Any) -> None:
        with self._lock:
            self._state = state
            self._version += 1

    # -- display ------------------------------------------------------------------------
    def status_line(self) -> str:
        """``<status> · <detail>``: the line the widget shows under its buttons."""
        state = self.state
        detail = state.get("detail", "") if isinstance(state, Mapping) else ""
        return f"{self.status} · {detail}" if detail else f"{self.status} ·"

    def figure(self):
        """A new matplotlib ``Figure`` of the last state, or ``None`` before any."""
        state = self.state
        if state is None:
            return None
        from matplotlib.figure import Figure

        fig = Figure(figsize=self.figsize, layout="constrained")
        self.draw(fig, state)
        fig.suptitle(f"{self.title}: {self.status_line()}", fontsize="medium")
        return fig

    def __repr__(self) -> str:
        knobs = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        extra = f" ({self.message})" if self.message else ""
        return f"<{type(self).__name__} {knobs}: {self.status_line()}{extra}>"

    # -- live widgets -------------------------------------------------------------------
    def _build_layout(self) -> None:
        import panel as pn

        self._inputs = {}
        for name, f in self.fields.items():
            if f.choices is not None:
                cls, extra = pn.widgets.Select, {"options": list(f.choices)}
            elif f.kind is int:
                cls, extra = pn.widgets.IntInput, {}
            elif f.kind is float:
                cls, extra = pn.widgets.FloatInput, {}
            else:
                cls, extra = pn.widgets.TextInput, {}
            value = self.values[name]
            self._inputs[name] = widget(cls, f.label, value=value, width=120, **extra)
        self._run_button = widget(pn.widgets.Button, "Run", "primary", width=90)
        self._stop_button = widget(pn.widgets.Button, "Stop", "danger", width=90, disabled=True)
        self._run_button.on_click(lambda event: self.start())
        self._stop_button.on_click(lambda event: self.stop())
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False)
        self._status_pane = pn.pane.Markdown(self.status_line(), margin=(5, 10))
        self._figure_pane = pn.pane.Matplotlib(None, tight=True, dpi=90, format="png")
        self._layout = pn.Column(
            pn.pane.Markdown(f"### {self.title}"),
            pn.Row(*self._inputs.values()),
            pn.Row(self._run_button, self._stop_button, self._status_pane),
            self._alert,
            self._figure_pane,
            sizing_mode="stretch_width",
        )

    def _widget_values(self) -> dict:
        return {name: w.value for name, w in self._inputs.items()}

    def _show_message(self, text: str) -> None:
        self.message = text
        if self._layout is not None:
            self._alert.object = text
            self._alert.visible = bool(text)

    def _start_periodic(self) -> None:
        if self._periodic is None:
            import panel as pn

            self._periodic = pn.state.add_periodic_callback(self.refresh, period=self.period_ms)

    def refresh(self) -> None:
        """Redraw the live figure if a new state arrived; runs on the document's thread."""
        with self._lock:
            seen = (self._version, self.status)
            new = seen != self._drawn
            self._drawn = seen
        if new and self._layout is not None:
            self._figure_pane.object = self.figure()
        self._sync_widgets()
        if self._periodic is not None and not self.running and not new:
            self._periodic.stop()
            self._periodic = None

    def _sync_widgets(self) -> None:
        if self._layout is None:
            return
        running = self.running
        self._status_pane.object = self.status_line()
        self._run_button.disabled = running
        self._stop_button.disabled = not running
