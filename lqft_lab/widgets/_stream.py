"""Rows of metrics that arrive on one thread and are drawn on another.

The contract that keeps dashboards safe: :meth:`MetricStream.push` may be called from any
thread (a training thread, a sampler's callback) and only touches plain Python lists under
a lock and a thread-safe queue. :meth:`MetricStream.drain` moves the queued rows into a
``holoviews.streams.Buffer``, which redraws Bokeh models; it must run on the thread that
owns the document (a panel periodic callback, or the notebook's main thread).
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["MetricStream"]


def _as_float(value) -> float:
    """A metric as a float; missing or non-numeric values become NaN (a gap in the plot)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class MetricStream:
    """Named float columns, one row per report, with an optional live holoviews Buffer.

    Args:
        columns: column names; the first is the x axis (``"step"``).
        live: create a ``holoviews.streams.Buffer`` and queue rows for it; when ``False``
            rows are only stored (headless: holoviews is never imported).
        length: most rows the Buffer keeps (all rows are always kept in :attr:`data`).
    """

    def __init__(self, columns: Sequence[str], live: bool, length: int = 100_000):
        if len(set(columns)) != len(columns) or not columns:
            raise ValueError(f"columns must be distinct and non-empty, got {list(columns)}")
        self.columns = tuple(columns)
        self.x = self.columns[0]
        self.live = bool(live)
        self._lock = threading.Lock()
        self._rows: dict[str, list[float]] = {c: [] for c in self.columns}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.buffer = None
        if self.live:
            import holoviews as hv

            empty = {c: np.zeros(0) for c in self.columns}
            self.buffer = hv.streams.Buffer(empty, length=length, index=False)

    def push(self, row: Mapping) -> dict[str, float]:
        """Store one row (any thread); returns it as floats. Unknown keys are ignored."""
        values = {c: _as_float(row.get(c)) for c in self.columns}
        with self._lock:
            for c in self.columns:
                self._rows[c].append(values[c])
        if self.live:
            self._queue.put(values)
        return values

    @property
    def data(self) -> dict[str, list[float]]:
        """A snapshot copy of every row pushed so far, column → list of floats."""
        with self._lock:
            return {c: list(v) for c, v in self._rows.items()}

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows[self.x])

    def latest(self) -> dict[str, float] | None:
        """The last row pushed, or ``None``."""
        with self._lock:
            if not self._rows[self.x]:
                return None
            return {c: v[-1] for c, v in self._rows.items()}

    @property
    def pending(self) -> int:
        """Rows queued but not yet drained into the Buffer (approximate)."""
        return self._queue.qsize()

    def drain(self) -> int:
        """Send queued rows to the Buffer in one chunk (document thread only); returns count."""
        rows = []
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if rows and self.buffer is not None:
            chunk = {c: np.array([r[c] for r in rows], dtype=float) for c in self.columns}
            self.buffer.send(chunk)
        return len(rows)

    def curve(self, y: str, unit_range: bool = False, height: int = 220):
        """A live ``hv.DynamicMap`` of column ``y`` against the x column (live streams only)."""
        if self.buffer is None:
            raise RuntimeError("curve() needs a live MetricStream")
        import holoviews as hv
        import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend's options)

        x = self.x

        def draw(data):
            curve = hv.Curve((data[x], data[y]), x, y)
            opts = dict(
                height=height,
                responsive=True,
                title=y,
                tools=["hover"],
                framewise=True,
                backend="bokeh",
            )
            if unit_range:
                opts["ylim"] = (0, 1.02)
            return curve.opts(**opts)

        return hv.DynamicMap(draw, streams=[self.buffer])
