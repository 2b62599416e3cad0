"""From Markov-chain measurements to estimates with honest errors (Γ-method).

A chain run measures the per-configuration primaries of :func:`phi4_primaries` (use
:func:`phi4_chain_observables` as ``run_chain(observables=...)``); :func:`estimate` turns
those series, shaped ``(T,)`` for one chain or ``(T, B)`` for ``B`` independent chains, into a
:class:`~lqft_lab.analysis.GammaResult` for a primary (``"absM"``) or a derived observable
(``"chi2"``, ``"E"``, ``"binder"``), the error including autocorrelations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from ..analysis import GammaResult, gamma_method
from .scalar import DERIVED, PRIMARY_FNS, derived_observable

__all__ = ["PRIMARIES", "phi4_chain_observables", "estimate"]

PRIMARIES = tuple(PRIMARY_FNS)


def phi4_chain_observables(keys=PRIMARIES) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Name → function ``(B, *lattice) -> (B,)`` for each primary, for ``run_chain``."""
    unknown = set(keys) - set(PRIMARIES)
    if unknown:
        raise ValueError(f"unknown primaries {sorted(unknown)}; choose from {PRIMARIES}")
    return {key: PRIMARY_FNS[key] for key in keys}


def estimate(
    series: Mapping[str, torch.Tensor], name: str, volume: int | None = None, S: float = 2.0
) -> GammaResult:
    """Γ-method estimate of a primary or derived φ⁴ observable from chain measurements.

    Args:
        series: primary name → measurements ``(T,)`` or ``(T, B)`` (``chain.observables``).
        name: a primary (``"absM"``, ``"M2"``, ...) or a derived observable in
            :data:`~lqft_lab.observables.scalar.DERIVED`.
        volume: lattice volume, needed for ``"chi2"``.
        S: Wolff's window parameter.

    Example:
        >>> chain = run_chain(hmc, x0, 2000, observables=phi4_chain_observables())
        >>> chi2 = estimate(chain.observables, "chi2", volume=64)
        >>> chi2.value, chi2.error, chi2.tau_int
    """
    if name in DERIVED:
        keys, f = derived_observable(name, volume)
    elif name in series:
        keys, f = (name,), None
    else:
        raise ValueError(
            f"no series for {name!r}; have {sorted(series)} and derived {sorted(DERIVED)}"
        )
    missing = [k for k in keys if k not in series]
    if missing:
        raise ValueError(f"{name!r} needs the primaries {list(keys)}; missing {missing}")
    columns = [series[k].detach().double().cpu() for k in keys]
    shapes = {tuple(c.shape) for c in columns}
    if len(shapes) != 1:
        raise ValueError(f"primaries for {name!r} have different shapes {sorted(shapes)}")
    if f is None:
        return gamma_method(columns[0].numpy(), S=S)
    data = torch.stack(columns, dim=-1)  # (T, K) or (T, B, K)
    if data.dim() == 2:
        data = data.unsqueeze(1)  # (T, 1, K): one replica
    return gamma_method(data.numpy(), f=f, S=S)
