"""Small translation-equivariant networks used inside coupling layers."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["ConvNet"]


class ConvNet(nn.Sequential):
    """Periodic (circular-padding) convolutions with LeakyReLU, optional final tanh.

    Works on 2D lattices: input ``(B, C_in, L, L)`` → output ``(B, C_out, L, L)``.
    Circular padding makes the net commute with lattice translations, so a model trained
    at one volume runs at any other.

    Args:
        in_channels, out_channels: channel counts.
        hidden: hidden channel counts, e.g. ``[8, 8]`` as in arXiv:2101.08176.
        kernel_size: odd kernel size.
        final_tanh: squash the output to (-1, 1) (stabilises early training).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: Sequence[int] = (8, 8),
        kernel_size: int = 3,
        final_tanh: bool = True,
    ):
        if kernel_size % 2 != 1 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        sizes = [in_channels, *hidden, out_channels]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(
                nn.Conv2d(
                    c_in, c_out, kernel_size, padding=kernel_size // 2, padding_mode="circular"
                )
            )
            if i < len(sizes) - 2:
                layers.append(nn.LeakyReLU())
            elif final_tanh:
                layers.append(nn.Tanh())
        super().__init__(*layers)
