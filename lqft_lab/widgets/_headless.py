"""When a dashboard may assume a live frontend, and how it shows itself when it may not.

A dashboard is *headless* when nobody can watch it: under papermill (CI), in a test, in a
plain Python process or a terminal IPython. Headless dashboards never start threads or
periodic callbacks and never build Bokeh models; they keep their data and show one static
matplotlib figure (``image/png``) when displayed. Live dashboards show a panel layout.

Detection (:func:`is_headless`), in order:

1. ``LQFT_LAB_HEADLESS=1`` (also ``true``/``yes``/``on``) forces headless, ``=0`` (also
   ``false``/``no``/``off``) forces live. ``python -m lqft_lab notebooks`` and the tests set
   it: papermill leaves few traces inside the kernel it drives, so the variable is the
   reliable signal.
2. No IPython *kernel* (plain Python, terminal IPython): headless.
3. Signs of papermill in the kernel (``PAPERMILL_*`` names in the environment or in the
   user namespace, which ``papermill --inject-paths`` creates): headless.
4. Otherwise live.
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

__all__ = ["is_headless", "ensure_panel_extension", "figure_bundle", "DisplayMixin"]

ENV_VAR = "LQFT_LAB_HEADLESS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _kernel_shell():
    """The IPython shell if this process is a Jupyter kernel, else ``None``."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipykernel
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    return shell


def is_headless() -> bool:
    """True when no live notebook frontend can be assumed (see the module docstring).

    Example:
        >>> import os; os.environ["LQFT_LAB_HEADLESS"] = "1"
        >>> is_headless()
        True
    """
    flag = os.environ.get(ENV_VAR, "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    shell = _kernel_shell()
    if shell is None:
        return True
    if any(k.startswith("PAPERMILL") for k in os.environ):
        return True
    user_ns = getattr(shell, "user_ns", {}) or {}
    return "PAPERMILL_INPUT_PATH" in user_ns or "PAPERMILL_OUTPUT_PATH" in user_ns


def ensure_panel_extension() -> None:
    """Load panel's notebook extension once, with Bokeh's and panel's JavaScript inlined.

    Called lazily by live dashboards, so importing :mod:`lqft_lab.widgets` stays cheap and
    headless runs never import panel. Calling ``pn.extension()`` yourself first is harmless
    (yours is kept).

    Released panel loads its JavaScript from cdn.bokeh.org and cdn.holoviz.org by default;
    without internet access (a laptop offline, a closed cluster) every dashboard would then
    render blank. Inlining makes the dashboards work wherever JupyterLab does, at the price
    of about 6 MB in the output of the cell that first shows one (saved with the notebook
    unless outputs are cleared). Set ``PANEL_INLINE=0`` to load from the CDN instead.
    Offline, a few CSS requests still fail harmlessly: panel 1.9 points a Markdown pane's
    stylesheets back at the CDN whenever its text changes (the status lines).
    """
    import panel as pn
    from panel.config import panel_extension

    if not panel_extension._loaded:
        inline = os.environ.get("PANEL_INLINE", "").strip().lower() not in _FALSE
        pn.extension(inline=inline)


def figure_bundle(fig, text: str = "") -> dict[str, Any]:
    """A display bundle ``{"image/png": ..., "text/plain": ...}`` of a matplotlib figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"image/png": png, "text/plain": text or repr(fig)}


class DisplayMixin:
    """Notebook display for dashboards: the panel layout when live, a PNG when headless.

    Subclasses set ``self.headless``, ``self._handles = []`` and ``self._layout`` (their
    panel layout when live, else ``None``) and implement ``figure()`` (a matplotlib
    ``Figure`` or ``None`` when there is nothing to draw yet) and ``__repr__``.

    Headless displays are made with a display id; :meth:`_refresh_static` replaces them
    with the final figure, so a dashboard displayed *before* a synchronous run still ends
    as one figure of all its data.
    """

    headless: bool
    _handles: list
    _layout: Any = None

    @property
    def layout(self):
        """The panel layout (live), or a panel pane of the static figure (headless)."""
        return self._layout if self._layout is not None else self.__panel__()

    def _live_view(self):
        return self._layout

    def figure(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _static_bundle(self) -> dict[str, Any]:
        fig = self.figure()
        if fig is None:
            return {"text/plain": repr(self)}
        return figure_bundle(fig, repr(self))

    def __panel__(self):
        if not self.headless:
            return self._live_view()
        import panel as pn

        fig = self.figure()
        return pn.pane.Matplotlib(fig, tight=True) if fig is not None else pn.pane.Str(repr(self))

    def _repr_mimebundle_(self, include=None, exclude=None):
        if not self.headless:
            ensure_panel_extension()
            return self._live_view()._repr_mimebundle_(include, exclude)
        return self._static_bundle()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not self.headless:
            ensure_panel_extension()
            display(self._live_view())
            return
        handle = display(self._static_bundle(), raw=True, display_id=True)
        if handle is not None:
            self._handles.append(handle)

    def show_static(self) -> None:
        """Display the static figure now (in a notebook), whatever the mode."""
        from IPython.display import display

        display(self._static_bundle(), raw=True)

    def _refresh_static(self) -> None:
        """Redraw every earlier headless display of this dashboard with the current data."""
        if not self._handles:
            return
        bundle = self._static_bundle()
        for handle in self._handles:
            handle.update(bundle, raw=True)
