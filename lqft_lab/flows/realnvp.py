"""The real NVP flow of the 2021 φ⁴ tutorial: alternating checkerboard affine couplings.

``RealNVPConfig`` is the architecture (stored in checkpoints); ``build_real_nvp`` turns it
into a :class:`~lqft_lab.flows.base.FlowModel` with a unit normal prior. Defaults reproduce
arXiv:2101.08176: 16 layers, conv hidden channels ``[8, 8]``, kernel 3, final tanh.
``spectral_prior=True`` replaces the white-noise prior by a Gaussian with a learned
momentum-space spectrum (:class:`~lqft_lab.flows.priors.SpectralNormalPrior`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from .. import checks
from ..lattice import checkerboard
from . import _args
from .base import Flow, FlowModel
from .coupling import AffineCoupling
from .nets import ConvNet
from .priors import NormalPrior, SpectralNormalPrior

__all__ = ["RealNVPConfig", "build_real_nvp", "transfer_real_nvp"]


@dataclass(frozen=True)
class RealNVPConfig:
    """Architecture of a checkerboard real NVP flow on an ``L × L`` lattice.

    ``spectral_prior``: draw the couplings' input from a Gaussian whose momentum-space
    spectrum is learned (:class:`~lqft_lab.flows.priors.SpectralNormalPrior`) instead of
    ``N(0, 1)`` at every site. It adds 337 weights and a field-independent log-determinant.

    Raises:
        TypeError: a field of the wrong kind (``n_layers=2.5``, ``hidden=8`` instead of
            ``(8,)``, ``final_tanh="yes"``), naming it.
        ValueError: ``L`` odd or below 2, ``n_layers < 1``, widths below 1, ``kernel_size``
            even or larger than ``L``.
    """

    L: int = 8
    n_layers: int = 16
    hidden: tuple[int, ...] = field(default=(8, 8))
    kernel_size: int = 3
    final_tanh: bool = True
    spectral_prior: bool = False

    def __post_init__(self):
        L = checks.integer("L", self.L, low=2, high=_args.MAX_L)
        if L % 2:
            raise ValueError(f"L must be even for a checkerboard mask, got {L}")
        values = {
            "L": L,
            "n_layers": checks.integer("n_layers", self.n_layers, low=1),
            "hidden": _args.widths("hidden", self.hidden),
            "kernel_size": _args.kernel_size(self.kernel_size, L),
            "final_tanh": _args.flag("final_tanh", self.final_tanh),
            "spectral_prior": _args.flag("spectral_prior", self.spectral_prior),
        }
        for name, value in values.items():  # plain Python values (numpy ints come in too)
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def build_real_nvp(
    config: RealNVPConfig | None = None, seed: int | None = None, **overrides
) -> FlowModel:
    """Build a real NVP :class:`FlowModel` for scalar fields ``(B, L, L)``.

    Layer ``i`` freezes the sites of parity ``i % 2`` and updates the others.

    Args:
        config: the architecture; keyword ``overrides`` replace its fields.
        seed: initialise the weights from this seed without touching the global RNG
            (``None`` uses the global RNG, as ``torch.nn`` does).

    Raises:
        TypeError: ``config`` is not a :class:`RealNVPConfig`, an override is not one of its
            fields or of the wrong kind, ``seed`` is not an integer.
        ValueError: an override or ``seed`` out of range (see :class:`RealNVPConfig`).

    Example:
        >>> model = build_real_nvp(L=8, n_layers=4)
        >>> x, logq = model.sample(16)
    """
    config = _args.config(RealNVPConfig, config, overrides, "build_real_nvp")
    seed = _args.seed(seed)
    shape = (config.L, config.L)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        layers = []
        for i in range(config.n_layers):
            mask = checkerboard(shape, parity=i % 2)
            net = ConvNet(1, 2, config.hidden, config.kernel_size, config.final_tanh)
            layers.append(AffineCoupling(net, mask))
        prior = SpectralNormalPrior(shape) if config.spectral_prior else NormalPrior(shape)
    model = FlowModel(prior, Flow(layers))
    model.config = config
    return model


def transfer_real_nvp(model: FlowModel, L: int, spectral_prior: bool | None = None) -> FlowModel:
    """The same flow on an ``L × L`` lattice: a copy sharing no storage with ``model``.

    Every network is a periodic convolution and every mask a checkerboard, so the weights
    define a translation-equivariant map at any even ``L``; only the masks and the prior's
    shape depend on the volume. A model trained at ``L₀`` therefore runs, and can be
    fine-tuned, at ``L`` (arXiv:2101.08176 sec. IV; for how its quality scales, the
    locality estimate ``ESS(V) ≈ ESS(V₀)^(V/V₀)`` of Hackett's talk, arXiv:2401.10874).

    Args:
        model: a flow from :func:`build_real_nvp` (it carries ``model.config``).
        L: the new lattice size (even, ≥ 2).
        spectral_prior: ``True`` gives the copy a :class:`SpectralNormalPrior` (untrained: it
            starts as ``N(0, 1)``, so the copy first samples what ``model`` does) when ``model``
            has none; ``None`` keeps ``model``'s prior. A trained spectral prior is never
            dropped: ``False`` on a model that has one raises.

    Returns:
        A new model on ``model``'s device and dtype, in ``model``'s train/eval mode.

    Raises:
        TypeError: ``model`` is not from :func:`build_real_nvp`, ``L`` not an integer,
            ``spectral_prior`` not a bool or ``None``.
        ValueError: ``L`` odd, below 2 or smaller than the kernel, or ``spectral_prior=False``
            for a model with a trained spectral prior.
    """
    config = getattr(model, "config", None)
    if not isinstance(model, FlowModel) or not isinstance(config, RealNVPConfig):
        raise checks.ArgumentKindError(
            f"model must be a flow built by build_real_nvp (with a RealNVPConfig .config), got "
            f"{type(model).__name__}"
        )
    if spectral_prior is not None:
        spectral_prior = _args.flag("spectral_prior", spectral_prior)
    if spectral_prior is None:
        spectral_prior = config.spectral_prior
    if config.spectral_prior and not spectral_prior:
        raise ValueError("spectral_prior=False would drop the model's trained spectral prior")
    new = build_real_nvp(config, L=L, spectral_prior=spectral_prior)
    param = next(model.parameters())
    new.to(device=param.device, dtype=param.dtype)
    weights = {
        k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith(".mask")
    }
    missing, unexpected = new.load_state_dict(weights, strict=False)
    added = spectral_prior and not config.spectral_prior  # the new prior keeps its own init
    if unexpected or any(
        not (k.endswith(".mask") or (added and k.startswith("prior."))) for k in missing
    ):
        raise RuntimeError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    new.train(model.training)
    return new
