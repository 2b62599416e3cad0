"""Static matplotlib figures for notebooks and for headless dashboards.

Every helper draws into ``ax`` when given and otherwise creates a new pyplot figure (so a
notebook shows it at the end of the cell), and returns the axes it drew on. Inputs are
plain data: a trainer's ``history`` (list of metric dicts, or a dict of columns), a
:class:`~lqft_lab.analysis.autocorr.GammaResult`, a chain's ``(T, B)`` measurements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import checks

__all__ = [
    "plot_training_history",
    "plot_autocorrelation",
    "plot_tau_int",
    "plot_trace",
    "UNIT_METRICS",
]

#: metrics that live in [0, 1] and get a fixed y range
UNIT_METRICS = frozenset({"ess", "acceptance"})


def _axes(ax, n: int = 1, width: float = 4.0, height: float = 3.0):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, layout="constrained")
    return axes[0, 0] if n == 1 else list(axes[0])


def _columns(history) -> dict[str, np.ndarray]:
    """``history`` as columns: accepts a list of dicts or a dict of sequences."""
    if isinstance(history, Mapping):
        return {k: np.asarray(v, dtype=float) for k, v in history.items()}
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    return {k: np.array([_float(row.get(k)) for row in history]) for k in keys}


def _gamma_result(result, fields: tuple[str, ...]):
    if not all(hasattr(result, f) for f in fields):
        raise checks.ArgumentKindError(
            f"result must be a GammaResult (with {', '.join(fields)}), got {type(result).__name__}"
        )
    return result


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def plot_training_history(
    history,
    metrics: Sequence[str] = ("loss", "ess", "acceptance"),
    ax=None,
    x: str = "step",
):
    """Plot training metrics against the step, one axis per metric.

    Args:
        history: ``trainer.history`` (list of dicts) or a dict of columns
            (``TrainingDashboard.data``).
        metrics: columns to plot; missing ones are skipped with an empty, titled axis.
        ax: one axes (all metrics on it, with a legend) or a sequence of one axes per
            metric; default a new figure with one axis per metric.
        x: the x column.

    Returns:
        The list of axes drawn on.

    Raises:
        ValueError: (``TypeError`` too, for the wrong kind) naming the argument:
            ``history`` neither a list of dicts nor a dict of columns, ``metrics`` not names
            (one name may be a string) or none, ``x`` not a string, or as many axes in
            ``ax`` as metrics.
    """
    from .training import _names

    if isinstance(history, (str, bytes)) or not isinstance(history, (Mapping, Sequence)):
        raise checks.ArgumentKindError(
            f"history must be a list of metric dicts or a dict of columns, got {history!r:.80}"
        )
    if not isinstance(history, Mapping) and not all(isinstance(r, Mapping) for r in history):
        raise checks.ArgumentKindError("history must be a list of metric dicts (trainer.history)")
    metrics = list(_names("metrics", metrics))
    if not metrics:
        raise ValueError("metrics must name at least one column to plot")
    if not isinstance(x, str):
        raise checks.ArgumentKindError(f"x must be a column name, got {x!r:.80}")
    cols = _columns(history)
    axes = _axes(ax, len(metrics))
    if isinstance(axes, (list, tuple, np.ndarray)):
        axes, shared = list(axes), False
    else:  # one axes for every metric
        axes, shared = [axes] * len(metrics), len(metrics) > 1
    if len(axes) != len(metrics):
        raise ValueError(f"ax holds {len(axes)} axes for {len(metrics)} metrics")
    steps = cols.get(x, np.zeros(0))
    for name, a in zip(metrics, axes, strict=True):
        y = cols.get(name)
        if y is not None and len(y):
            a.plot(steps, y, marker="." if len(y) < 50 else None, label=name)
        if not shared:
            a.set_title(name)
            a.set_ylabel(name)
            if name in UNIT_METRICS:
                a.set_ylim(0, 1.02)
        a.set_xlabel(x)
        a.grid(alpha=0.3)
    if shared:
        axes[0].legend()
    return axes[:1] if shared else axes


def plot_autocorrelation(result, ax=None, max_lag: int | None = None, label: str | None = None):
    """Plot the normalised autocorrelation ``ρ(t) = Γ(t)/Γ(0)`` with the window marked.

    Args:
        result: a ``GammaResult`` (uses ``rho`` and ``window``).
        ax: axes to draw on; default a new figure.
        max_lag: last lag shown; default ``max(3 W, 10)`` capped by the available lags.
        label: legend label.

    Returns:
        The axes.

    Raises:
        ValueError: (``TypeError`` too) for a ``result`` that is not a ``GammaResult`` or a
            ``max_lag`` that is not an integer >= 0.
    """
    _gamma_result(result, ("rho", "window"))
    if max_lag is not None:
        max_lag = checks.integer("max_lag", max_lag, low=0)
    ax = _axes(ax)
    rho = np.asarray(result.rho, dtype=float)
    window = int(result.window)
    if max_lag is None:
        max_lag = max(3 * window, 10)
    t = np.arange(min(len(rho), max_lag + 1))
    ax.plot(t, rho[: len(t)], marker="." if len(t) < 60 else None, label=label)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.axvline(window, color="C3", ls="--", lw=1, label=f"W = {window}")
    ax.set_xlabel("t")
    ax.set_ylabel("Γ(t)/Γ(0)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_tau_int(result, ax=None, max_window: int | None = None):
    """Plot the running ``τ_int(W)`` with its error band (Wolff eq. (42)) and the window.

    Args:
        result: a ``GammaResult`` (uses ``tau_int_running``, ``tau_int_running_error``,
            ``window``, ``tau_int``, ``tau_int_error``).
        ax: axes to draw on; default a new figure.
        max_window: last ``W`` shown; default ``max(3 W, 10)``.

    Returns:
        The axes.

    Raises:
        ValueError: (``TypeError`` too) for a ``result`` that is not a ``GammaResult`` or a
            ``max_window`` that is not an integer >= 0.
    """
    _gamma_result(
        result, ("tau_int_running", "tau_int_running_error", "window", "tau_int", "tau_int_error")
    )
    if max_window is not None:
        max_window = checks.integer("max_window", max_window, low=0)
    ax = _axes(ax)
    tau = np.asarray(result.tau_int_running, dtype=float)
    dtau = np.asarray(result.tau_int_running_error, dtype=float)
    window = int(result.window)
    if max_window is None:
        max_window = max(3 * window, 10)
    w = np.arange(min(len(tau), max_window + 1))
    ax.plot(w, tau[: len(w)], color="C0", label="τ_int(W)")
    ax.fill_between(w, (tau - dtau)[: len(w)], (tau + dtau)[: len(w)], color="C0", alpha=0.25)
    ax.axvline(
        window,
        color="C3",
        ls="--",
        lw=1,
        label=f"W = {window}: τ_int = {result.tau_int:.2f} ± {result.tau_int_error:.2f}",
    )
    ax.set_xlabel("W")
    ax.set_ylabel("τ_int(W)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_trace(values, ax=None, name: str = "", every: int = 1, max_chains: int = 4):
    """Plot Monte Carlo time series: ``(T,)`` or the first ``max_chains`` columns of ``(T, B)``.

    Returns:
        The axes.

    Raises:
        ValueError: (``TypeError`` too) for ``values`` that are not a non-empty array of
            real numbers, ``every`` or ``max_chains`` < 1, or a non-string ``name``.
    """
    every = checks.integer("every", every, low=1)
    max_chains = checks.integer("max_chains", max_chains, low=1)
    if not isinstance(name, str):
        raise checks.ArgumentKindError(f"name must be a string, got {name!r:.80}")
    try:
        raw = values.detach().cpu() if hasattr(values, "detach") else values
        y = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise checks.ArgumentKindError(
            f"values must be an array of real numbers, got {type(values).__name__}"
        ) from None
    if y.ndim == 0 or y.size == 0:
        raise ValueError(f"values must be a non-empty (T,) or (T, B) series, got shape {y.shape}")
    ax = _axes(ax, width=6.0)
    y = y.reshape(len(y), -1)  # (T, B)
    t = np.arange(1, len(y) + 1) * every
    for b in range(min(y.shape[1], max_chains)):
        ax.plot(t, y[:, b], lw=0.7, alpha=0.8 if b == 0 else 0.5)
    ax.set_xlabel("Monte Carlo step")
    ax.set_ylabel(name)
    ax.set_title(f"trace of {name}" if name else "trace")
    ax.grid(alpha=0.3)
    return ax
