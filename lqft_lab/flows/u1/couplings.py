"""Plaquette couplings: a kernel moves each active plaquette, the active link follows.

**One layer** (Kanwar et al., arXiv:2003.06413; Albergo et al., arXiv:2101.08176, U(1) section).
On the stripes of :mod:`lqft_lab.flows.u1.masks`, the frozen plaquettes condition a kernel
``h`` (a circle diffeomorphism, :mod:`lqft_lab.flows.u1.kernels`) that maps each active
plaquette ``P → P' = h(P | frozen)``; the active link moves by ``θ_mu(x) += σ (P' - P)``, so
its active plaquette becomes ``P'``. The links' Jacobian is triangular with diagonal
``h'(P)`` on the active links and 1 elsewhere: ``logJ = Σ_active log h'(P)``. Plaquettes
are gauge invariant, so the shift is gauge invariant and the layer commutes with every gauge
transformation; ``logJ`` is gauge invariant.

**2×1 loops** (``loops_2x1``, optional). The conditioner cannot see a layer's passive
plaquettes, which its update moves by ``-Δ``. The 2×1 loop made of an active plaquette and
the passive one below it does not hold the active link (the rung they share, with opposite
signs), so it is unchanged by the layer and may condition it: given the loop, the kernel
can place the active plaquette so that the passive one lands where the target wants it.
Started from the same β = 2 flow and trained alike (8000 steps at β = 6, L = 8), the loops
lowered the KL divergence from 4.90 to 4.35 nats per configuration.

:class:`StripeCoupling` is shared with the SU(N) couplings of
:mod:`lqft_lab.flows.sun_lattice`; ``_Coupling`` with the line rotations of
:mod:`lqft_lab.flows.u1.line_rotations`.
"""

from __future__ import annotations

import torch
from torch import nn

from ... import checks
from ...actions.u1 import _plaquette_angles, wrap_angle
from .. import _args
from ..base import check_flow_input
from .masks import U1Masks

__all__ = ["StripeCoupling", "GaugeEquivariantCoupling"]


class _Coupling(nn.Module):
    """A layer whose two directions are one method, ``_couple(links, inverse)``.

    ``forward(z)`` and ``reverse(x)`` first check their argument with ``_check(name, links)``
    (kind, shape, dtype and device; see :mod:`lqft_lab.flows.base` on finiteness).
    """

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, logJ)``; refuses links of the wrong kind, shape, dtype or device."""
        self._check("z", z)
        return self._couple(z, inverse=False)

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, logJ_inv)``; refuses links of the wrong kind, shape, dtype or device."""
        self._check("x", x)
        return self._couple(x, inverse=True)

    def _couple(self, links: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _check(self, name: str, theta) -> None:
        """U(1) link angles ``(B, 2, L0, L1)`` on this layer's lattice ``self.lattice``."""
        check_flow_input(self, name, theta, complex_field=False)
        if theta.dim() != 4 or theta.shape[1] != 2:
            raise ValueError(
                f"{name} must hold 2D U(1) link angles of shape (B, 2, L0, L1), "
                f"got {tuple(theta.shape)}"
            )
        if tuple(theta.shape[2:]) != self.lattice:
            raise ValueError(
                f"{name}: links of shape {tuple(theta.shape)} do not fit this layer's lattice "
                f"(B, 2, {self.lattice[0]}, {self.lattice[1]})"
            )


class StripeCoupling(_Coupling):
    """What the gauge-equivariant couplings of :func:`~lqft_lab.flows.u1.u1_masks` layers share.

    Holds the kernel, the conditioner and one layer's masks (the frozen plaquettes and the
    flat indices of the active ones, as buffers outside the ``state_dict``); subclasses
    implement ``_couple(links, inverse) -> (links', logJ)`` for their group.
    """

    def __init__(self, kernel: nn.Module, conditioner: nn.Module | None, masks: U1Masks):
        super().__init__()
        if not isinstance(kernel, nn.Module):
            raise checks.ArgumentKindError(
                f"kernel must be a torch.nn.Module, got {type(kernel).__name__}"
            )
        if conditioner is not None and not isinstance(conditioner, nn.Module):
            raise checks.ArgumentKindError(
                f"conditioner must be a torch.nn.Module, got {type(conditioner).__name__}"
            )
        if not isinstance(masks, U1Masks):
            raise checks.ArgumentKindError(
                f"masks must be U1Masks from u1_masks, got {type(masks).__name__}"
            )
        self.kernel = kernel
        self.conditioner = conditioner
        self.mu, self.offset = masks.mu, masks.offset
        self.lattice = tuple(masks.active.shape)
        self.register_buffer("frozen", masks.frozen.clone(), persistent=False)
        index = masks.active.flatten().nonzero().squeeze(1)  # (n_active,) flat sites
        self.register_buffer("active_index", index, persistent=False)

    def extra_repr(self) -> str:
        return f"mu={self.mu}, offset={self.offset}, lattice={self.lattice}"


class GaugeEquivariantCoupling(StripeCoupling):
    """One gauge-equivariant coupling on 2D U(1) link angles ``(B, 2, L0, L1)``.

    Args:
        kernel: a circle map with ``n_params``, ``kernel(x, params)`` and
            ``kernel.inverse(y, params)``, e.g. :class:`~lqft_lab.flows.u1.NCPKernel`.
        conditioner: maps :meth:`features` (the ``(cos P, sin P)`` of the frozen plaquettes,
            ``(B, 2, L0, L1)`` with the active and passive plaquettes zeroed, and with
            ``loops_2x1`` two more channels) to the kernel's parameters
            ``(B, kernel.n_params, L0, L1)``; e.g. a periodic :class:`ConvNet`.
        masks: from :func:`~lqft_lab.flows.u1.u1_masks`. They are rebuilt from the configuration, so
            they are buffers outside the ``state_dict``.
        loops_2x1: feed the conditioner the 2×1 loops as well (:meth:`features`).

    Example:
        >>> layer = GaugeEquivariantCoupling(
        ...     NCPKernel(2), ConvNet(2, NCPKernel(2).n_params, final_tanh=False),
        ...     u1_masks((8, 8), mu=0, offset=0))
        >>> x, logJ = layer(torch.rand(4, 2, 8, 8) * 6.28)
    """

    def __init__(
        self, kernel: nn.Module, conditioner: nn.Module, masks: U1Masks, loops_2x1: bool = False
    ):
        if not hasattr(kernel, "n_params"):
            raise checks.ArgumentKindError(
                f"kernel must be a circle map with n_params (NCPKernel, CircularSplineKernel), "
                f"got {type(kernel).__name__}"
            )
        if conditioner is None:
            raise checks.ArgumentKindError("conditioner must be a torch.nn.Module, got None")
        super().__init__(kernel, conditioner, masks)
        self.loops_2x1 = _args.flag("loops_2x1", loops_2x1)
        self.register_buffer("link_sign", masks.link_sign.clone(), persistent=False)
        self.register_buffer("active", masks.active.clone(), persistent=False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, loops_2x1={self.loops_2x1}"

    def features(self, plaq: torch.Tensor) -> torch.Tensor:
        """The conditioner's input, ``(B, 2, L0, L1)`` or ``(B, 4, L0, L1)``, from plaquettes.

        Channels 0, 1: ``(cos P, sin P)`` on the frozen plaquettes, zero elsewhere. With
        ``loops_2x1``, channels 2, 3: ``(cos W, sin W)`` on the active sites, where
        ``W(x) = P(x) + P(x - ν̂)`` is the 2×1 loop made of the active plaquette and the
        passive one below it. The active link is the rung they share, with opposite signs,
        so ``W`` does not change in this layer: the kernel may depend on it and the layer
        stays invertible. It tells the kernel where the passive plaquette sits, which it
        cannot see otherwise: moving ``P`` by ``Δ`` moves the passive plaquette by ``-Δ``.
        """
        frozen = torch.where(self.frozen, torch.stack([torch.cos(plaq), torch.sin(plaq)], 1), 0.0)
        if not self.loops_2x1:
            return frozen
        loop = plaq + torch.roll(plaq, shifts=1, dims=2 - self.mu)  # P(x) + P(x - ν̂)
        pair = torch.stack([torch.cos(loop), torch.sin(loop)], dim=1)
        return torch.cat([frozen, torch.where(self.active, pair, 0.0)], dim=1)

    def _couple(self, theta: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        B = theta.shape[0]
        plaq = _plaquette_angles(theta)  # (B, L0, L1), unwrapped
        params = self.conditioner(self.features(plaq))
        if params.shape[1] != self.kernel.n_params or params.shape[2:] != plaq.shape[1:]:
            raise ValueError(
                f"the conditioner returned {tuple(params.shape)}, the kernel needs "
                f"(B, {self.kernel.n_params}, {self.lattice[0]}, {self.lattice[1]})"
            )
        # Work on the active plaquettes only: (B, n_active) angles, (B, n_params, n_active).
        p_old = wrap_angle(plaq.flatten(1)[:, self.active_index])
        p_params = params.flatten(2)[:, :, self.active_index]
        if inverse:
            p_new, log_dp = self.kernel.inverse(p_old, p_params)
        else:
            p_new, log_dp = self.kernel(p_old, p_params)
        delta = plaq.new_zeros(B, plaq[0].numel()).index_copy(1, self.active_index, p_new - p_old)
        # θ_mu(x) += σ (P' - P): the active plaquette at x becomes P' (mod 2π)
        shift = self.link_sign.to(theta.dtype) * delta.view_as(plaq).unsqueeze(1)  # (B,2,L0,L1)
        return theta + shift, log_dp.sum(dim=1)
