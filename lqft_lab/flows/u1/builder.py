"""The tutorial's U(1) flow: its architecture as a dataclass, the builder, and two upgrades.

:func:`build_u1_flow` stacks :class:`~lqft_lab.flows.u1.GaugeEquivariantCoupling` layers on
the stripes of :func:`~lqft_lab.flows.u1.stripe_offset` (every 8 layers update every link
once), optionally followed by :class:`~lqft_lab.flows.u1.LineRotationCoupling` blocks, over
a :class:`~lqft_lab.flows.priors.UniformAnglePrior`. The :class:`U1FlowConfig` it attaches as
``model.config`` is what :mod:`lqft_lab.io` stores in checkpoints and rebuilds them from.
:func:`add_loops_2x1` and :func:`add_line_rotations` copy a trained flow into a wider or
longer one that starts as the same map; :func:`add_context` into one whose conditioners also
see fixed position-dependent channels (where a defect sits).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ... import checks
from .. import _args
from ..base import Flow, FlowModel
from ..nets import ConvNet, PeriodicConv2d, WithContext
from ..priors import UniformAnglePrior
from ..splines import CircularSplineKernel
from .couplings import GaugeEquivariantCoupling
from .kernels import KERNELS, NCPKernel
from .line_rotations import LineRotationCoupling
from .masks import STRIPE_PERIOD, stripe_offset, u1_masks

__all__ = [
    "U1FlowConfig",
    "build_u1_flow",
    "add_loops_2x1",
    "add_line_rotations",
    "add_context",
]


@dataclass(frozen=True)
class U1FlowConfig:
    """Architecture of a gauge-equivariant U(1) flow on an ``L × L`` lattice.

    Defaults follow the U(1) example of arXiv:2101.08176: 16 layers (two full cycles of the
    8 mask patterns), 2 NCP components with a rotation, conv hidden channels ``[8, 8]``,
    kernel 3, no final tanh (its range would cap ``s`` at ``softplus(±1)``).
    ``kernel="spline"`` uses :class:`~lqft_lab.flows.splines.CircularSplineKernel` with
    ``n_bins`` bins instead. ``offset_step`` orders the stripe offsets
    (:func:`~lqft_lab.flows.u1.stripe_offset`). ``loops_2x1`` adds the 2×1 loop through
    each active link's two plaquettes to the conditioner's input
    (:meth:`~lqft_lab.flows.u1.GaugeEquivariantCoupling.features`). ``line_rotations``
    follows every cycle of 8 plaquette couplings (and an incomplete last one) with 4
    :class:`~lqft_lab.flows.u1.LineRotationCoupling` layers, lines of both directions and
    both parities, whose conditioners have the plaquette couplings' hidden channels and
    kernel size.

    Raises:
        TypeError: a field of the wrong kind (``n_layers=2.5``, ``hidden=8``, ``rotation="y"``),
            naming it.
        ValueError: ``L`` not a multiple of 4, counts below 1, an unknown ``kernel``,
            ``offset_step`` other than ±1, ``kernel_size`` even or above ``L + 1``.
    """

    L: int = 8
    n_layers: int = 16
    kernel: str = "ncp"
    n_mixture: int = 2
    n_bins: int = 8
    rotation: bool = True
    hidden: tuple[int, ...] = field(default=(8, 8))
    kernel_size: int = 3
    offset_step: int = -1
    loops_2x1: bool = False
    line_rotations: bool = False

    def __post_init__(self):
        L = checks.integer("L", self.L, low=2, high=_args.MAX_L)
        if L % STRIPE_PERIOD:
            raise ValueError(
                f"L must be a multiple of {STRIPE_PERIOD} for the U(1) stripe masks, got {L}"
            )
        if not isinstance(self.kernel, str) or self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {self.kernel!r}")
        values = {
            "L": L,
            "n_layers": checks.integer("n_layers", self.n_layers, low=1),
            "n_mixture": checks.integer("n_mixture", self.n_mixture, low=1),
            "n_bins": checks.integer("n_bins", self.n_bins, low=1),
            "rotation": _args.flag("rotation", self.rotation),
            "hidden": _args.widths("hidden", self.hidden),
            "kernel_size": _args.kernel_size(self.kernel_size, L),
            "offset_step": checks.integer("offset_step", self.offset_step),
            "loops_2x1": _args.flag("loops_2x1", self.loops_2x1),
            "line_rotations": _args.flag("line_rotations", self.line_rotations),
        }
        stripe_offset(0, values["offset_step"])  # validates it
        if self.kernel == "spline":
            CircularSplineKernel(values["n_bins"])  # validates n_bins against min_size
        for name, value in values.items():  # plain Python values (numpy ints come in too)
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _kernel(config: U1FlowConfig) -> nn.Module:
    if config.kernel == "ncp":
        return NCPKernel(config.n_mixture, config.rotation)
    return CircularSplineKernel(config.n_bins, config.rotation)


def _line_rotation_block(config: U1FlowConfig) -> list[LineRotationCoupling]:
    """The 4 line rotations after a cycle: lines of ``mu = 0, 1``, parities 0, 1."""
    block = []
    for mu in (0, 1):
        for parity in (0, 1):
            kernel = _kernel(config)
            net = ConvNet(
                LineRotationCoupling.n_features,
                kernel.n_params,
                config.hidden,
                config.kernel_size,
                final_tanh=False,
                dim=1,
            )
            block.append(LineRotationCoupling(kernel, net, (config.L, config.L), mu, parity))
    return block


def build_u1_flow(
    L: int | None = None,
    *,
    config: U1FlowConfig | None = None,
    seed: int | None = None,
    **overrides,
) -> FlowModel:
    """Build a gauge-equivariant :class:`FlowModel` for 2D U(1) links ``(B, 2, L, L)``.

    Layer ``i`` updates direction ``mu = i mod 2`` with stripe offset
    :func:`stripe_offset(i, config.offset_step) <lqft_lab.flows.u1.stripe_offset>`, so
    every 8 consecutive layers update every link once. The prior is
    :class:`~lqft_lab.flows.priors.UniformAnglePrior` (the Haar measure).

    Args:
        L: lattice size (a multiple of 4); overrides ``config.L``.
        config: the architecture; keyword ``overrides`` (``n_layers``, ``kernel``,
            ``n_mixture``, ``n_bins``, ``rotation``, ``hidden``, ``kernel_size``,
            ``offset_step``, ``loops_2x1``, ``line_rotations``) replace its fields.
        seed: initialise the weights from this seed without touching the global RNG.

    Returns:
        The model, with its :class:`U1FlowConfig` as ``model.config``.

    Raises:
        TypeError: ``config`` is not a :class:`U1FlowConfig`, an override is not one of its
            fields or of the wrong kind, ``seed`` is not an integer.
        ValueError: a value out of range (see :class:`U1FlowConfig`).

    Example:
        >>> model = build_u1_flow(8, n_layers=16, seed=0)
        >>> theta, logq = model.sample(32)          # (32, 2, 8, 8), (32,)
    """
    if L is not None:
        overrides["L"] = L
    config = _args.config(U1FlowConfig, config, overrides, "build_u1_flow")
    seed = _args.seed(seed)
    shape = (config.L, config.L)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        layers = []
        for i in range(config.n_layers):
            masks = u1_masks(shape, mu=i % 2, offset=stripe_offset(i, config.offset_step))
            kernel = _kernel(config)
            n_in = 4 if config.loops_2x1 else 2  # (cos, sin) of plaquettes [and of the loops]
            net = ConvNet(
                n_in, kernel.n_params, config.hidden, config.kernel_size, final_tanh=False
            )
            layers.append(GaugeEquivariantCoupling(kernel, net, masks, config.loops_2x1))
            if config.line_rotations and (i % 8 == 7 or i == config.n_layers - 1):
                layers.extend(_line_rotation_block(config))
    model = FlowModel(UniformAnglePrior(shape), Flow(layers))
    model.config = config
    return model


def add_loops_2x1(model: FlowModel) -> FlowModel:
    """A copy of a plaquette-only U(1) flow whose conditioners also see the 2×1 loops.

    The first convolution of every conditioner gains the two loop channels of
    :meth:`~lqft_lab.flows.u1.GaugeEquivariantCoupling.features` with zero weights, so the copy is
    the same map as ``model``: a starting point for training with loops from a flow trained
    without them (the shipped ``data/models/u1_*`` flows, for instance).

    Raises:
        ValueError: ``model`` is not from :func:`build_u1_flow`, or already sees the loops.
    """
    config = getattr(model, "config", None)
    if not isinstance(model, FlowModel) or not isinstance(config, U1FlowConfig):
        raise ValueError(
            f"model must be a U(1) flow built by build_u1_flow (add_loops_2x1), got "
            f"{type(model).__name__}"
        )
    if config.loops_2x1:
        raise ValueError("model: this flow's conditioners already see the 2×1 loops")
    wider = build_u1_flow(config=config, loops_2x1=True, seed=0)  # weights replaced below
    state = model.state_dict()
    for name, tensor in wider.state_dict().items():
        if tensor.shape != state[name].shape:  # a first convolution: (out, 4, k, k)
            state[name] = torch.cat([state[name], tensor.new_zeros(tensor.shape)[:, 2:]], dim=1)
    wider.load_state_dict(state)
    parameter = next(model.parameters())
    return wider.to(device=parameter.device, dtype=parameter.dtype).train(model.training)


def add_line_rotations(model: FlowModel) -> FlowModel:
    """A copy of a U(1) flow with line rotation blocks inserted, the same map.

    The plaquette couplings keep their weights and order; after every cycle of 8 of them
    (and after an incomplete last one) come 4 :class:`~lqft_lab.flows.u1.LineRotationCoupling`
    layers that start as the identity (``U1FlowConfig.line_rotations``). A starting point
    for training them into a flow trained without them, such as the shipped
    ``data/models/u1_*`` flows.

    Raises:
        ValueError: ``model`` is not from :func:`build_u1_flow`, or already has them.
    """
    config = getattr(model, "config", None)
    if not isinstance(model, FlowModel) or not isinstance(config, U1FlowConfig):
        raise ValueError(
            f"model must be a U(1) flow built by build_u1_flow (add_line_rotations), got "
            f"{type(model).__name__}"
        )
    if config.line_rotations:
        raise ValueError("model: this flow already has line rotations")
    longer = build_u1_flow(config=config, line_rotations=True, seed=0)
    plaquette_layers = [
        layer for layer in longer.flow.layers if isinstance(layer, GaugeEquivariantCoupling)
    ]
    for new, old in zip(plaquette_layers, model.flow.layers, strict=True):
        new.load_state_dict(old.state_dict())
    parameter = next(model.parameters())
    return longer.to(device=parameter.device, dtype=parameter.dtype).train(model.training)


def add_context(model: FlowModel, context: torch.Tensor) -> FlowModel:
    """A copy of a U(1) flow whose plaquette couplings' conditioners also see ``context``.

    ``context`` ``(C, L, L)`` is appended to every
    :class:`~lqft_lab.flows.u1.GaugeEquivariantCoupling`'s features
    (:class:`~lqft_lab.flows.nets.WithContext`), with zero weights in the first convolution,
    so the copy is the same map as ``model`` and learns to use the context in training.
    This is how a map between defect rungs knows where the defect is: the translation
    symmetry of the periodic convolutions is broken on purpose (DR-REX, Abbott et al.,
    arXiv:2404.11674). A gauge-invariant context (e.g. the defect's indicator) keeps the flow
    gauge equivariant. Line rotation layers are left as they are. The copy is not a
    checkpoint kind of :mod:`lqft_lab.io` (its config does not record the context).

    Raises:
        TypeError: ``context`` is not a tensor.
        ValueError: ``model`` is not from :func:`build_u1_flow`, or already sees a context;
            ``context`` is not finite ``(C, L, L)`` for the flow's ``L``.
    """
    config = getattr(model, "config", None)
    if not isinstance(model, FlowModel) or not isinstance(config, U1FlowConfig):
        raise ValueError(
            f"model must be a U(1) flow built by build_u1_flow (add_context), got "
            f"{type(model).__name__}"
        )
    checks.tensor("context", context, ndim=3)
    if tuple(context.shape[1:]) != (config.L, config.L):
        raise ValueError(
            f"context must be (C, {config.L}, {config.L}) for this flow, got {tuple(context.shape)}"
        )
    if any(isinstance(m, WithContext) for m in model.modules()):
        raise ValueError("model: this flow's conditioners already see a context")
    wider = copy.deepcopy(model)
    parameter = next(model.parameters())
    context = context.detach().to(device=parameter.device, dtype=parameter.dtype)
    for layer in wider.flow.layers:
        if not isinstance(layer, GaugeEquivariantCoupling):
            continue
        net = layer.conditioner
        first = net[0]
        conv = PeriodicConv2d(first.in_channels + context.shape[0], first.out_channels,
                              first.kernel_size[0])  # fmt: skip
        conv = conv.to(device=parameter.device, dtype=parameter.dtype)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, : first.in_channels] = first.weight
            conv.bias.copy_(first.bias)
        net[0] = conv
        layer.conditioner = WithContext(net, context)
    return wider
