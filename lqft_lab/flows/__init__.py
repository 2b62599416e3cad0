"""Normalizing flows. Contract: a flow maps base → field, ``forward(z) -> (x, logJ)``,
``reverse(x) -> (z, logJ_inv)``, with per-sample ``logJ`` of shape ``(B,)``;
``FlowModel.sample(B) -> (x, logq)`` and ``FlowModel.log_prob(x) -> logq``. For SU(N) fields
(complex matrices) ``logJ`` and ``logq`` are real and taken with respect to Haar measure.

:class:`PseudofermionFlow` is conditional: ``q(φ | θ)`` of a pseudofermion given U(1) links,
``forward(χ, θ)``, ``sample(θ) -> (φ, logq)``, ``log_prob(θ, φ)``."""

from .base import Flow, FlowModel
from .coupling import AffineCoupling
from .nets import ConvNet, PeriodicConv1d, PeriodicConv2d, WithContext, periodic_pad
from .priors import (
    HaarLinkPrior,
    HaarPrior,
    NormalPrior,
    SpectralNormalPrior,
    UniformAnglePrior,
    momentum_features,
)
from .pseudofermion import (
    CovariantCouplingLayer,
    HopLayer,
    PseudofermionFlow,
    PseudofermionFlowConfig,
    SpinScaleLayer,
    dirac_dagger_hops,
)
from .realnvp import RealNVPConfig, build_real_nvp, transfer_real_nvp
from .splines import CircularSplineKernel, IntervalSplineKernel
from .sun import (
    SingleMatrixFlow,
    SingleMatrixFlowConfig,
    SpectralKernel,
    build_single_matrix_flow,
    cube_to_simplex,
    log_stick_jacobian,
    simplex_to_cube,
)
from .sun_lattice import (
    SUNFlowConfig,
    SUNGaugeEquivariantCoupling,
    build_sun_flow,
    sun_plaquette_features,
)
from .u1 import (
    GaugeEquivariantCoupling,
    LineRotationCoupling,
    NCPKernel,
    U1FlowConfig,
    U1Masks,
    add_context,
    add_line_rotations,
    add_loops_2x1,
    build_u1_flow,
    stripe_offset,
    u1_masks,
)

__all__ = [
    "Flow",
    "FlowModel",
    "AffineCoupling",
    "ConvNet",
    "PeriodicConv1d",
    "PeriodicConv2d",
    "WithContext",
    "periodic_pad",
    "NormalPrior",
    "SpectralNormalPrior",
    "momentum_features",
    "RealNVPConfig",
    "build_real_nvp",
    "transfer_real_nvp",
    "UniformAnglePrior",
    "U1Masks",
    "stripe_offset",
    "u1_masks",
    "NCPKernel",
    "CircularSplineKernel",
    "GaugeEquivariantCoupling",
    "U1FlowConfig",
    "build_u1_flow",
    "add_loops_2x1",
    "LineRotationCoupling",
    "add_line_rotations",
    "add_context",
    "HaarPrior",
    "HaarLinkPrior",
    "IntervalSplineKernel",
    "simplex_to_cube",
    "cube_to_simplex",
    "log_stick_jacobian",
    "SpectralKernel",
    "SingleMatrixFlow",
    "SingleMatrixFlowConfig",
    "build_single_matrix_flow",
    "sun_plaquette_features",
    "SUNGaugeEquivariantCoupling",
    "SUNFlowConfig",
    "build_sun_flow",
    "PseudofermionFlow",
    "CovariantCouplingLayer",
    "PseudofermionFlowConfig",
    "HopLayer",
    "SpinScaleLayer",
    "dirac_dagger_hops",
]
