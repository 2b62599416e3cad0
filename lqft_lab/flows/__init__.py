"""Normalizing flows. Contract: a flow maps base → field, ``forward(z) -> (x, logJ)``,
``reverse(x) -> (z, logJ_inv)``, with per-sample ``logJ`` of shape ``(B,)``;
``FlowModel.sample(B) -> (x, logq)`` and ``FlowModel.log_prob(x) -> logq``."""

from .base import Flow, FlowModel
from .coupling import AffineCoupling
from .nets import ConvNet, PeriodicConv2d, periodic_pad
from .priors import NormalPrior, UniformAnglePrior
from .realnvp import RealNVPConfig, build_real_nvp, transfer_real_nvp
from .splines import CircularSplineKernel
from .u1 import (
    GaugeEquivariantCoupling,
    NCPKernel,
    U1FlowConfig,
    U1Masks,
    build_u1_flow,
    u1_masks,
)

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
    "UniformAnglePrior",
    "U1Masks",
    "u1_masks",
    "NCPKernel",
    "CircularSplineKernel",
    "GaugeEquivariantCoupling",
    "U1FlowConfig",
    "build_u1_flow",
]
