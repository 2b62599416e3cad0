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

Every notebook has an Explore widget built on :class:`.explore.Explorer` (knobs, Run and Stop,
a live figure; headless, one run and its static figure): :class:`Phi4Explorer` (01, its own
older design on :class:`TrainingDashboard`), :class:`Phi4ScalingExplorer` (01b),
:class:`U1FlowExplorer` (02), :class:`SpectralFlowExplorer` (03),
:class:`SchwingerExplorer` (04: the Wilson–Dirac spectrum, det D and det² reweighting),
:class:`ReplicaExplorer` (05: swap acceptance per pair of a β ladder, plain and flowed) and
:class:`CorrelatedExplorer` (06: d⟨O⟩/dβ by five Feynman–Hellmann estimators on exact draws).

The matplotlib helpers in :mod:`.plots` draw the same figures for static notebook cells.
"""

from ._headless import is_headless
from .controls import Phi4Explorer
from .explore import Explorer, Field
from .explore_correlated import CorrelatedExplorer
from .explore_phi4_scaling import Phi4ScalingExplorer
from .explore_replica import ReplicaExplorer
from .explore_schwinger import SchwingerExplorer
from .explore_sun import SpectralFlowExplorer
from .explore_u1 import U1FlowExplorer
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
    "Phi4ScalingExplorer",
    "U1FlowExplorer",
    "SpectralFlowExplorer",
    "SchwingerExplorer",
    "plot_training_history",
    "plot_autocorrelation",
    "plot_tau_int",
    "plot_trace",
    "ReplicaExplorer",
    "CorrelatedExplorer",
]
