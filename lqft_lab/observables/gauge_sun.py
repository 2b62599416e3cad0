"""Observables of 2D SU(N) gauge fields: the plaquette and rectangular Wilson loops.

Every function takes links ``U`` of shape ``(B, 2, L0, L1, N, N)`` (the conventions of
:mod:`lqft_lab.actions.sun`) and returns one real number per configuration, ``(B,)``, in the
real dtype matching ``U``'s complex dtype. All are gauge invariant (traces of closed loops).
Dtype and shape of ``U`` are checked, finiteness is not (as in :mod:`.gauge`: these run
every step of a chain).
The exact plaquette under the Wilson action is :func:`lqft_lab.exact.sun.sun_plaquette`; the
infinite-volume Wilson loop is :func:`lqft_lab.exact.sun.sun_wilson_loop_infinite_volume`.

References:
    D. Boyda et al., arXiv:2008.05456, sec. V (2D SU(N) observables).
"""

from __future__ import annotations

import torch

from ..actions.sun import check_sun_links, sun_plaquettes
from ..groups.sun import dagger
from ..lattice import shift
from .gauge import _check_extent

__all__ = ["sun_mean_plaquette", "sun_wilson_loop"]


def _re_trace(M: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(M, dim1=-2, dim2=-1).sum(-1).real


def _check_batch(U: torch.Tensor) -> int:
    """SU(N) links (:func:`check_sun_links`) in a non-empty batch; returns ``N``."""
    N = check_sun_links(U)
    if U.shape[0] == 0:
        raise ValueError(f"U has an empty batch, shape {tuple(U.shape)}")
    return N


def sun_mean_plaquette(U: torch.Tensor) -> torch.Tensor:
    """Average plaquette ``(1/V) Σ_x (1/N) Re tr U_P(x)``, shape ``(B,)``.

    For the Wilson action ``S = -β V · sun_mean_plaquette(U)``.
    """
    N = _check_batch(U)
    return _re_trace(sun_plaquettes(U)).flatten(1).mean(dim=1) / N


def _line(U: torch.Tensor, mu: int, n: int) -> torch.Tensor:
    # ordered product U_mu(x) U_mu(x + mû) … U_mu(x + (n-1) mû): (B, L0, L1, N, N)
    out = U[:, mu]
    for k in range(1, n):
        out = out @ shift(U[:, mu], mu, k)
    return out


def sun_wilson_loop(U: torch.Tensor, R: int, T: int) -> torch.Tensor:
    """Rectangular Wilson loop ``W(R, T) = (1/V) Σ_x (1/N) Re tr[loop at x]``, shape ``(B,)``.

    The loop runs ``T`` links along direction 0 from ``x``, then ``R`` along direction 1, then
    back (the orientation of the plaquette), so ``W(1, 1)`` is :func:`sun_mean_plaquette`.

    Args:
        U: links ``(B, 2, L0, L1, N, N)``.
        R: extent along direction 1, ``1 <= R <= L1``.
        T: extent along direction 0, ``1 <= T <= L0``.

    Raises:
        TypeError: if ``U`` is not a tensor or ``R``/``T`` not integers.
        ValueError: for links of the wrong dtype or shape, or ``R``/``T`` out of range.
    """
    N = _check_batch(U)
    R = _check_extent(R, "R", U.shape[3], 1)
    T = _check_extent(T, "T", U.shape[2], 0)
    line0, line1 = _line(U, 0, T), _line(U, 1, R)
    loop = line0 @ shift(line1, 0, T) @ dagger(shift(line0, 1, R)) @ dagger(line1)
    return _re_trace(loop).flatten(1).mean(dim=1) / N
