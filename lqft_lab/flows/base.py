"""The flow contract: bijections from base space to field space, and the model around them.

Direction (note: the opposite of zuko's): a flow maps **base → field**.

* ``layer.forward(z) -> (x, logJ)`` with ``logJ = log|det ∂x/∂z|`` per sample, shape ``(B,)``,
  on the input's device and dtype;
* ``layer.reverse(x) -> (z, logJ_inv)`` with ``logJ_inv = log|det ∂z/∂x| = -logJ``.

A :class:`FlowModel` is a prior ``r(z)`` plus a :class:`Flow` (a stack of layers). The model
density ``logq(x) = logr(z) - logJ`` is accumulated in exactly one place, :meth:`FlowModel.sample`
(and its inverse in :meth:`FlowModel.log_prob`).

Boundary checks. A field enters a model through :meth:`Flow.forward`, :meth:`Flow.reverse` and
:meth:`FlowModel.log_prob`; these refuse (``TypeError``/``ValueError`` naming ``z`` or ``x``)
anything but a finite, batched tensor of the model's dtype (its complex counterpart for SU(N)
links) on the model's device, and :meth:`FlowModel.log_prob` also checks the lattice.
Single layers check kind, shape, dtype and device of what they get, but not finiteness: a
scan for NaN costs a host synchronisation per layer, and :meth:`FlowModel.sample` feeds them
its prior's draws, which are finite by construction.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterable

import torch
from torch import nn

from .. import checks

__all__ = ["Flow", "FlowModel"]

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def model_dtype_device(module: nn.Module) -> tuple[torch.dtype | None, torch.device | None]:
    """The real floating dtype and the device of ``module``'s first floating parameter or
    buffer (``(None, None)`` for a module without any)."""
    # lazily: this runs in every layer's forward, and listing every parameter of a deep flow
    # there cost a sixth of a flow-MH step
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return None, None


def check_flow_input(
    module: nn.Module,
    name: str,
    x,
    *,
    complex_field: bool | None = None,
    finite: bool = False,
) -> torch.Tensor:
    """Check a field handed to a flow or a layer: a batched tensor ``(B, ...)`` with ``B >= 1``
    whose (real) dtype and device are the module's.

    Args:
        module: the flow or layer; its parameters and buffers fix the dtype and device.
        name: the argument's name, for the message (``"z"`` or ``"x"``).
        x: the field.
        complex_field: ``True`` for SU(N) links (complex64/complex128), ``False`` for real
            fields, ``None`` to accept either.
        finite: also refuse NaN and ``±inf`` entries (a host synchronisation: only at the
            model's entry points, never per layer).

    Raises:
        TypeError: if ``x`` is not a tensor.
        ValueError: for half precision or integer dtypes, a dtype or device other than the
            module's, no batch axis, an empty batch, or (with ``finite``) NaN or ``inf``.
    """
    if layer_checks_suspended():
        return x
    checks.tensor(
        name,
        x,
        allow_complex=complex_field is None,
        complex_only=bool(complex_field),
        finite=False,
    )
    if x.dim() < 2:
        raise ValueError(f"{name} must be batched, shape (B, ...), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch, shape {tuple(x.shape)}")
    dtype, device = model_dtype_device(module)
    if dtype is not None:
        want = _COMPLEX_OF[dtype] if x.is_complex() else dtype
        if x.dtype != want:
            raise ValueError(
                f"{name} has dtype {x.dtype} but this flow's weights are {dtype}, so it takes "
                f"{want}; convert the field with .to({want}) or the model with .to({x.real.dtype})"
            )
        checks.tensor(name, x, allow_complex=True, device=device, finite=False)
    if finite:
        checks.finite_tensor(name, x)
    return x


class Flow(nn.Module):
    """A composition of bijective layers, applied in order base → field.

    Args:
        layers: modules each implementing ``forward(z) -> (x, logJ)`` and
            ``reverse(x) -> (z, logJ_inv)``.
    """

    def __init__(self, layers: Iterable[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, logJ)`` for base samples ``z: (B, ...)``.

        Raises:
            TypeError, ValueError: ``z`` is not a finite batched tensor of the flow's dtype
                on its device (:func:`check_flow_input`), or does not fit a layer.
        """
        check_flow_input(self, "z", z, finite=True)
        return self._forward(z)

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, logJ_inv)`` for fields ``x: (B, ...)``.

        Raises:
            TypeError, ValueError: as :meth:`forward`, naming ``x``.
        """
        check_flow_input(self, "x", x, finite=True)
        return self._reverse(x)

    def _forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # unchecked: FlowModel.sample's prior draws (no host sync inside a training step)
        logJ = z.real.new_zeros(z.shape[0])  # real also for complex (SU(N)) fields
        x = z
        for layer in self.layers:
            x, ld = layer(x)
            logJ = logJ + ld
        return x, logJ

    def _reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logJ_inv = x.real.new_zeros(x.shape[0])
        z = x
        for layer in reversed(self.layers):
            z, ld = layer.reverse(z)
            logJ_inv = logJ_inv + ld
        return z, logJ_inv


class FlowModel(nn.Module):
    """A normalizing-flow density ``q(x)``: a prior pushed through a :class:`Flow`.

    Args:
        prior: an object with ``sample(B, generator=None) -> z`` and ``log_prob(z) -> (B,)``,
            and a ``lattice_shape`` attribute.
        flow: the base → field bijection.

    Example:
        >>> x, logq = model.sample(64)          # x: (64, L, L), logq: (64,)
        >>> torch.allclose(model.log_prob(x), logq, atol=1e-4)
        True
    """

    def __init__(self, prior: nn.Module, flow: Flow):
        super().__init__()
        self.prior = prior
        self.flow = flow

    @property
    def lattice_shape(self) -> tuple[int, ...]:
        return tuple(self.prior.lattice_shape)

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x ~ q`` and return ``(x, logq(x))`` (differentiable w.r.t. the weights).

        Raises:
            TypeError: ``batch_size`` is not an integer, ``generator`` not a
                ``torch.Generator``.
            ValueError: ``batch_size < 1``, or a generator on another device than the model.
        """
        batch_size = checks.integer("batch_size", batch_size, low=1)
        _check_generator(self, generator)
        z = self.prior.sample(batch_size, generator=generator)
        x, logJ = _run(self.flow, z, reverse=False)
        logq = self.prior.log_prob(z) - logJ  # change of variables, base -> field
        return x, logq

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``logq(x)`` of given fields ``(B, *lattice)`` through the reverse flow.

        Raises:
            TypeError: ``x`` is not a tensor.
            ValueError: ``x`` does not match the model's lattice, dtype or device, has an
                empty batch, or holds NaN or ``inf``.
        """
        check_flow_input(self, "x", x, finite=False)
        if x.shape[1:] != torch.Size(self.lattice_shape):
            raise ValueError(
                f"x: field shape {tuple(x.shape)} does not match the model's lattice "
                f"(B, {', '.join(map(str, self.lattice_shape))})"
            )
        checks.finite_tensor("x", x)
        z, logJ_inv = _run(self.flow, x, reverse=True)
        return self.prior.log_prob(z) + logJ_inv


_STATE = threading.local()


def layer_checks_suspended() -> bool:
    """Whether a :class:`FlowModel` is running its own flow on a field it has already checked
    (or drawn from its prior): the layers, convolutions and kernels then skip their checks,
    which cost a tenth or more of a small model's sampling time."""
    return getattr(_STATE, "depth", 0) > 0


@contextlib.contextmanager
def _layer_checks_suspended():
    _STATE.depth = getattr(_STATE, "depth", 0) + 1
    try:
        yield
    finally:
        _STATE.depth -= 1


def _run(flow: nn.Module, x: torch.Tensor, reverse: bool):
    """A model's own call of its flow, without the entry checks (see the module docstring):
    the field was checked at the model's entry or drawn from its prior, so the layers' checks
    are suspended for this call (this thread only)."""
    with _layer_checks_suspended():
        if isinstance(flow, Flow):
            return flow._reverse(x) if reverse else flow._forward(x)
        return flow.reverse(x) if reverse else flow(x)


def _check_generator(module: nn.Module, generator) -> None:
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise checks.ArgumentKindError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    _, device = model_dtype_device(module)
    if device is not None and torch.device(generator.device).type != device.type:
        raise ValueError(
            f"generator is on {generator.device} but the model is on {device}; make it with "
            f"torch.Generator(device={device.type!r})"
        )
