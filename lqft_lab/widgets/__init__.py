"""Live dashboards for notebooks (panel + holoviews), with a headless fallback.

Contract for every dashboard here:

* **Loops don't draw.** Dashboards subscribe to callbacks (``Trainer.add_callback``,
  ``run_chain(callback=...)``); callbacks only store rows and queue them, and only the
  document's thread (a panel periodic callback, or the notebook's main thread) updates
  Bokeh models. Training runs in a background thread so Stop works.
* **Headless never blocks or fails.** When :func:`is_headless` is true (papermill, tests,
  plain Python), nothing is threaded or drawn live: ``start()`` runs synchronously, the data
  are kept in ``.data``, and displaying the dashboard shows one static matplotlib figure
  (``.figure()``) of everything collected.
* Displaying a dashboard (last expression of a cell, ``display(dash)``, or inside a panel
  layout via ``__panel__``) shows the live panel layout or the static figure; panel's
  notebook extension is loaded on first use.

The matplotlib helpers in :mod:`.plots` draw the same figures for static notebook cells.
"""

from ._headless import is_headless
from .controls import Phi4Explorer
from .explore import Explorer, Field
from .plots import plot_autocorrelation, plot_tau_int, plot_trace, plot_training_history
from .sampling import SamplingDashboard
from .training import TrainingDashboard

__all__ = [
    "is_headless",
    "TrainingDashboard",
    "SamplingDashboard",
    "Phi4Explorer",
    "Explorer",
    "Field",
    "plot_training_history",
    "plot_autocorrelation",
    "plot_tau_int",
    "plot_trace",
]
