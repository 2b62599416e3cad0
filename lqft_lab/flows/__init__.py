"""Normalizing flows. Contract: a flow maps base → field, ``forward(z) -> (x, logJ)``,
``reverse(x) -> (z, logJ_inv)``, with per-sample ``logJ`` of shape ``(B,)``;
``FlowModel.sample(B) -> (x, logq)`` and ``FlowModel.log_prob(x) -> logq``."""

from .base import Flow, FlowModel
from .coupling import AffineCoupling
from .nets import ConvNet, PeriodicConv2d, periodic_pad
from .priors import NormalPrior
from .realnvp import RealNVPConfig, build_real_nvp, transfer_real_nvp

__all__ = [
    "Flow",
    "FlowModel",
    "AffineCoupling",
    "ConvNet",
    "PeriodicConv2d",
    "periodic_pad",
    "NormalPrior",
    "RealNVPConfig",
    "build_real_nvp",
    "transfer_real_nvp",
]
