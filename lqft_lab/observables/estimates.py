"""From Markov-chain measurements to estimates with honest errors (Γ-method).

A chain run measures the per-configuration primaries of :func:`phi4_primaries` (use
:func:`phi4_chain_observables` as ``run_chain(observables=...)``); :func:`estimate` turns
those series, shaped ``(T,)`` for one chain or ``(T, B)`` for ``B`` independent chains, into a
:class:`~lqft_lab.analysis.GammaResult` for a primary (``"absM"``) or a derived observable
(``"chi2"``, ``"E"``, ``"binder"``), the error including autocorrelations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from ..analysis import GammaResult, gamma_method
from .scalar import DERIVED, PRIMARY_FNS, derived_observable, pole_mass_from_means

__all__ = ["PRIMARIES", "phi4_chain_observables", "estimate", "pole_mass"]

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
    if f is None:
        return gamma_method(series[name].detach().double().cpu().numpy(), S=S)
    return _derived(series, keys, f, name, S)


def _stack(series, keys, name: str) -> torch.Tensor:
    """The primaries ``keys`` as one float64 CPU tensor ``(T, R, K)`` (``R = 1``: one chain)."""
    columns = [series[k].detach().double().cpu() for k in keys]
    shapes = {tuple(c.shape) for c in columns}
    if len(shapes) != 1:
        raise ValueError(f"primaries for {name!r} have different shapes {sorted(shapes)}")
    data = torch.stack(columns, dim=-1)  # (T, K) or (T, B, K)
    return data.unsqueeze(1) if data.dim() == 2 else data


def _derived(series, keys, f, name: str, S: float) -> GammaResult:
    return gamma_method(_stack(series, keys, name).numpy(), f=f, S=S)


def pole_mass(
    series: Mapping[str, torch.Tensor],
    lattice: tuple[int, ...],
    t_range=None,
    S: float = 2.0,
) -> GammaResult:
    """Γ-method estimate of the pole mass ``m_p`` from chain measurements.

    Args:
        series: needs ``"M"`` and ``"c0" … "c{L0-1}"``; measure them with
            ``observables={**phi4_chain_observables(("M",)), **timeslice_observables(L0)}``.
        lattice: the lattice shape ``(L0, *spatial)``.
        t_range: time separations averaged over (default ``1 … L0/2 - 1``), see
            :func:`~lqft_lab.observables.scalar.pole_mass_from_means`.
        S: Wolff's window parameter.
    """
    L0, spatial = int(lattice[0]), int(torch.Size(lattice[1:]).numel())
    keys = ("M", *(f"c{t}" for t in range(L0)))
    missing = [k for k in keys if k not in series]
    if missing:
        raise ValueError(f"the pole mass needs the primaries M, c0..c{L0 - 1}; missing {missing}")

    def f(means):
        return pole_mass_from_means(means, L0, spatial, t_range)

    data = _stack(series, keys, "mp")
    if not np.isfinite(f(data.mean(dim=(0, 1)).numpy())):
        raise ValueError(
            "the correlator is too noisy for an effective mass (an arccosh argument is < 1); "
            "measure longer or narrow t_range"
        )
    # The Γ-method also evaluates f on each replica's means (for its bias correction), where
    # many short chains can make the arccosh undefined. Averaging independent chains in
    # groups at each Monte Carlo time changes neither the means nor the normalised
    # autocorrelation function, and leaves the error as it was; halve the number of groups
    # until every group's correlator has an effective mass.
    while data.shape[1] > 1 and not all(np.isfinite(f(m)) for m in data.mean(dim=0).numpy()):
        R = data.shape[1] - data.shape[1] % 2
        data = 0.5 * (data[:, 0:R:2] + data[:, 1:R:2])  # an odd last chain is dropped
    return gamma_method(data.numpy(), f=f, S=S)
