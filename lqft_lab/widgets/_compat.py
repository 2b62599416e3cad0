"""Panel widgets across versions: panel 1.9 renamed name → label, button_type → color.

Dashboards build their widgets through :func:`widget`, which uses the new keywords when the
installed panel has them (no deprecation warnings) and the old ones otherwise (panel < 1.9).
"""

from __future__ import annotations

__all__ = ["widget"]


def widget(cls, label: str, color: str | None = None, **params):
    """``cls(label=..., color=..., **params)``, spelled for the installed panel."""
    new = "label" in cls.param
    params["label" if new else "name"] = label
    if color is not None:
        params["color" if "color" in cls.param else "button_type"] = color
    return cls(**params)
