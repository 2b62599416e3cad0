"""Near-zero modes along κ: a uniform-flux configuration of charge Q, and the lowest real
eigenvalue, the spectrum's left edge and the sign of det D as κ grows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ... import checks, linalg
from ...actions.u1 import check_links
from ...actions.wilson_dirac import WilsonDirac
from ...samplers import (
    u1_links_from_plaquettes,
)
from .. import _checks


def uniform_flux(L: int, charge: int = 1, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Links ``(1, 2, L, L)`` of an ``L × L`` torus whose every plaquette is ``2π Q/V``:
    the smoothest configuration of topological charge ``Q`` (the classical instanton of the
    torus), in the axial gauge of :func:`~lqft_lab.samplers.u1_links_from_plaquettes`.

    Args:
        L: lattice extent, ``>= 2``.
        charge: the charge ``Q``, an integer with ``|Q| < V/2`` (each plaquette stays below
            ``π``, so the geometric charge is ``Q``).
        dtype: ``torch.float64`` or ``torch.float32``.

    Raises:
        TypeError, ValueError: for bad arguments, naming them.
    """
    L = checks.integer("L", L, low=2)
    V = L * L
    charge = checks.integer("charge", charge, low=-(V - 1) // 2, high=(V - 1) // 2)
    dtype = checks.field_dtype("dtype", dtype)
    plaquettes = torch.full((1, L, L), 2 * math.pi * charge / V, dtype=dtype)
    return u1_links_from_plaquettes(plaquettes)


@dataclass(frozen=True)
class KappaScan:
    """Spectral facts of ``D_κ`` along ``κ`` for fixed links (:func:`kappa_scan`).

    Attributes:
        kappa: the hopping parameters, ``(K,)``.
        lowest_real: the smallest real eigenvalue of ``D`` per configuration, ``(K, B)``
            (NaN where ``D`` has none, as for free links with antiperiodic time).
        min_real_part: the left edge of the spectrum, ``min Re λ``, ``(K, B)``.
        sign_det: the sign of the real ``det D``, ``(K, B)``: the weight of one flavour.
        log_abs_det: ``log|det D|``, ``(K, B)``.
    """

    kappa: np.ndarray
    lowest_real: np.ndarray
    min_real_part: np.ndarray
    sign_det: np.ndarray
    log_abs_det: np.ndarray


def kappa_scan(
    theta: torch.Tensor, kappas: Sequence[float], *, antiperiodic: bool = True
) -> KappaScan:
    """The lowest real eigenvalue and the sign and size of ``det D_κ`` at each ``κ``.

    γ5-hermiticity pairs complex eigenvalues with their conjugates, so ``det D`` is real and
    its sign is that of the product of the real eigenvalues: where one crosses zero (a
    near-zero mode of a charged configuration near ``κ_c``), ``det D`` changes sign, which
    one flavour cannot tolerate as a weight while two, ``(det D)²``, can. An eigenvalue
    counts as real when ``|Im λ| <= 1e-9 (1 + |λ|)``. Dense eigenvalues: small lattices.

    Args:
        theta: links ``(B, 2, L0, L1)``, float64 recommended.
        kappas: hopping parameters, each in ``[0, 1)``.
        antiperiodic: antiperiodic fermion boundary conditions in time.

    Returns:
        A :class:`KappaScan`.

    Raises:
        TypeError, ValueError: for bad links or ``kappas``, naming them.
    """
    check_links(theta, finite=True)
    kappas = _checks.reals("kappas", kappas, low=0, high=1, high_open=True)
    lowest, edge, signs, logs = [], [], [], []
    for kappa in kappas:
        D = WilsonDirac(kappa, antiperiodic=antiperiodic).dense(theta)  # (B, 2V, 2V)
        lam = torch.linalg.eigvals(D)  # (B, 2V)
        real = lam.imag.abs() <= 1e-9 * (1 + lam.abs())
        lowest.append(torch.where(real, lam.real, math.inf).min(dim=1).values)
        edge.append(lam.real.min(dim=1).values)
        sign, logabs = linalg.slogdet(D)
        signs.append(sign.real)
        logs.append(logabs)
    lowest = torch.stack(lowest).double().numpy()
    return KappaScan(
        kappa=np.asarray(kappas, dtype=float),
        lowest_real=np.where(np.isinf(lowest), np.nan, lowest),
        min_real_part=torch.stack(edge).double().numpy(),
        sign_det=np.sign(torch.stack(signs).double().numpy()),
        log_abs_det=torch.stack(logs).double().numpy(),
    )
