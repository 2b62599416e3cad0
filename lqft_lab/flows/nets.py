"""Small translation-equivariant networks used inside coupling layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvNet", "PeriodicConv1d", "PeriodicConv2d", "periodic_pad"]


def periodic_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two axes of ``x`` by ``pad`` sites with periodic (wrap-around) images.

    Equal to ``F.pad(x, (pad,) * 4, mode="circular")`` but built from two concatenations,
    whose backward pass is a cheap split: on CPU at the tutorial's sizes this makes each
    convolution's forward and backward about 15% faster than torch's circular padding.
    """
    if pad == 0:
        return x
    x = torch.cat([x[..., -pad:, :], x, x[..., :pad, :]], dim=-2)
    return torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)


class PeriodicConv2d(nn.Conv2d):
    """``nn.Conv2d`` on a periodic lattice: same output size, wrap-around boundaries.

    Parameters and ``state_dict`` keys are those of ``nn.Conv2d``, so it loads weights saved
    from ``nn.Conv2d(..., padding=k // 2, padding_mode="circular")``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, padding=0, **kwargs)
        self.periodic_pad = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(periodic_pad(x, self.periodic_pad), self.weight, self.bias)


class PeriodicConv1d(nn.Conv1d):
    """``nn.Conv1d`` on a periodic chain: same output length, wrap-around boundaries."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, padding=0, **kwargs)
        self.periodic_pad = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.periodic_pad
        if pad:
            x = torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)
        return F.conv1d(x, self.weight, self.bias)


class ConvNet(nn.Sequential):
    """Periodic (circular-padding) convolutions with LeakyReLU, optional final tanh.

    Works on 2D lattices: input ``(B, C_in, L, L)`` → output ``(B, C_out, L, L)``; with
    ``dim=1`` on periodic chains, ``(B, C_in, n)`` → ``(B, C_out, n)``. Circular padding
    makes the net commute with lattice translations, so a model trained at one volume runs
    at any other.

    Args:
        in_channels, out_channels: channel counts.
        hidden: hidden channel counts, e.g. ``[8, 8]`` as in arXiv:2101.08176.
        kernel_size: odd kernel size.
        final_tanh: squash the output to (-1, 1) (stabilises early training).
        dim: 2 (lattices) or 1 (chains).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: Sequence[int] = (8, 8),
        kernel_size: int = 3,
        final_tanh: bool = True,
        dim: int = 2,
    ):
        if kernel_size % 2 != 1 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim!r}")
        conv = PeriodicConv2d if dim == 2 else PeriodicConv1d
        sizes = [in_channels, *hidden, out_channels]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(conv(c_in, c_out, kernel_size))
            if i < len(sizes) - 2:
                layers.append(nn.LeakyReLU())
            elif final_tanh:
                layers.append(nn.Tanh())
        super().__init__(*layers)
