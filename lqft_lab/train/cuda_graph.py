"""Capturing a :class:`~lqft_lab.train.Trainer`'s step as one CUDA graph, replayed every step.

Small batches are launch-bound on a GPU: a step of the tutorial's flow is a few hundred tiny
kernels, and one replay costs about one launch. :class:`GraphedStep` captures the whole step
(sampling, loss, backward, clipping, Adam and the NaN guard) once and replays it; a replay
draws the random stream the ordinary step would, so the two train alike. A step that waits
for the host cannot be captured: it is found in CUDA's sync debug mode (warnings containing
:data:`SYNC_WARNING`), and the trainer then falls back to ordinary steps with a warning, or
raises if ``TrainConfig.cuda_graph`` is ``True``.

Only the reparameterization step is captured. The score-function step
(``TrainConfig(gradient="score")``, :mod:`~lqft_lab.train.score`) reads on the host whether
its drawn fields are finite before the reverse pass (``FlowModel.log_prob`` refuses
non-finite fields), so it cannot be: :class:`~lqft_lab.train.TrainConfig` refuses
``cuda_graph=True`` with it, and the trainer never builds a :class:`GraphedStep` for it.
"""

from __future__ import annotations

import contextlib
import gc
import warnings
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .reverse_kl import Trainer

__all__ = ["GraphedStep", "SYNC_WARNING"]


class GraphedStep:
    """A :class:`~lqft_lab.train.Trainer`'s step captured once as a CUDA graph, then replayed.

    The first steps run op by op on a side stream (cuDNN, autograd and Adam set themselves
    up lazily, which a capture must not see); the last of them also checks, in CUDA's sync
    debug mode, that the step never waits for the host. The next step is captured and
    replayed, and every later step is one replay. A replay reuses the captured tensors: the
    parameters and Adam's state are updated in place, the learning rate is read from the
    device tensor the trainer refills, and the training generator is registered with the
    graph, so each replay draws a fresh batch. Its random stream is the one ordinary steps
    would draw, so a graphed and an ordinary trainer of the same seed train alike
    (tests/test_gpu.py checks this).

    A step that synchronises with the host (``torch.linalg.eig`` of the SU(N ≥ 3) flows runs
    on the CPU) cannot be captured: the trainer then warns once and carries on with ordinary steps,
    or raises if ``TrainConfig.cuda_graph`` is ``True``. The same happens if a capture fails
    for a reason the check missed; the generators the voided capture left marked as
    capturing are then released by a capture that succeeds, so that random draws work again.

    Garbage collection is paused during the capture: collecting an old trainer's graph there
    would free memory mid-capture, which voids it.

    Reference: PyTorch's CUDA graphs notes, "whole-network capture"
    (https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs).
    """

    warmup_steps = 3

    def __init__(self):
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self._eager_steps = 0
        self._logw: torch.Tensor | None = None

    def step(self, trainer: Trainer) -> torch.Tensor:
        if self.graph is not None:
            self.graph.replay()
            return self._logw.clone()
        if self.failed:
            return trainer._eager_step()
        if self._eager_steps < self.warmup_steps:
            self._eager_steps += 1
            last = self._eager_steps == self.warmup_steps
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), _sync_warnings(record=last) as synced:
                logw = trainer._eager_step()
            torch.cuda.current_stream().wait_stream(side)
            if synced:
                self._give_up(trainer, f"the step synchronises with the host: {synced[0]}")
            return logw
        return self._capture(trainer)

    def _capture(self, trainer: Trainer) -> torch.Tensor:
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(trainer.generator)
        trainer.optimizer.zero_grad(set_to_none=True)  # gradients are allocated in the graph
        torch.cuda.synchronize()
        gc.collect()
        gc_enabled = gc.isenabled()
        gc.disable()
        capture = torch.cuda.Stream()
        capture.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(capture):
                # thread_local: a dashboard thread drawing meanwhile does not void it.
                graph.capture_begin(capture_error_mode="thread_local")
                try:
                    logw = trainer._eager_step()
                finally:
                    graph.capture_end()
        except RuntimeError as err:
            _release_generators(trainer.generator)
            self._give_up(trainer, f"the capture failed: {err}")
            trainer.optimizer.zero_grad(set_to_none=True)
            return trainer._eager_step()
        finally:
            if gc_enabled:
                gc.enable()
        torch.cuda.current_stream().wait_stream(capture)
        self.graph, self._logw = graph, logw
        graph.replay()  # capturing records the step without running it
        return logw.clone()

    def _give_up(self, trainer: Trainer, reason: str) -> None:
        self.failed = True
        message = f"this flow's training step cannot be captured as a CUDA graph ({reason})"
        if trainer.config.cuda_graph:
            raise RuntimeError(
                f"{message}; use TrainConfig(cuda_graph=None) to fall back to ordinary steps"
            )
        warnings.warn(
            f"{message}; training continues with ordinary steps "
            "(TrainConfig(cuda_graph=False) silences this)",
            RuntimeWarning,
            stacklevel=5,
        )


# What CUDA's sync debug mode warns at each host synchronisation (c10's warn_or_error_on_sync).
# Matched exactly: the notice torch gives the first time a process sets the mode ("Synchronization
# debug mode is a prototype feature and does not yet detect all synchronizing operations") also
# says "synchronizing", and taking it for a sync kept every process's first trainer off the graph.
SYNC_WARNING = "called a synchronizing CUDA operation"


def _is_sync_warning(message: str) -> bool:
    """Whether a warning's text is CUDA's report of a host synchronisation."""
    return SYNC_WARNING in message


@contextlib.contextmanager
def _sync_warnings(record: bool):
    """Collect CUDA's "synchronizing operation" warnings raised inside (if ``record``)."""
    found: list[str] = []
    if not record:
        yield found
        return
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield found
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    found.extend(str(w.message) for w in caught if _is_sync_warning(str(w.message)))


def _release_generators(generator: torch.Generator) -> None:
    """Unmark ``generator`` and the default CUDA generator as capturing after a voided capture.

    A capture registers its generators and marks them as capturing; only a capture that
    ends normally unmarks them, and until then every draw from them raises. A small capture
    that succeeds, with the same generators registered, does that.
    """
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        graph.capture_begin()
        torch.ones(1, device=generator.device).add_(1)
        graph.capture_end()
    torch.cuda.current_stream().wait_stream(stream)
