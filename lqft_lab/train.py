"""Reverse-KL self-training of a flow against an action, with callbacks and checkpoints.

The loss is the shifted reverse Kullback–Leibler divergence (arXiv:2101.08176 eq. (19))

    L(q) = E_{x~q}[ log q(x) + S(x) ] = KL(q || p) - log Z,

estimated on a fresh batch from the model every step; only samples of the model are
needed, never samples of ``p``. Training reports through callbacks (dashboards subscribe;
the trainer never draws) and can be stopped from another thread with :meth:`Trainer.stop`.

Every ``log_every`` steps the metrics dict
``{"step", "loss", "ess", "acceptance", "lr", "skipped", "time"}`` is appended to
``trainer.history`` and passed to each callback. ``ess`` and ``acceptance`` there are
measured on the training batch and are biased high for small batches; quote figures
measured on a fresh batch of at least 4096 samples (see :mod:`lqft_lab.analysis.ess`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from tqdm.auto import tqdm

from .analysis.ess import ess as _ess
from .samplers.chain import _check_int
from .samplers.flow_mcmc import (
    FlowMCMCState,
    FlowMetropolis,
    _check_local_sampler,
    _local_moves,
    independence_metropolis,
)

__all__ = [
    "TrainConfig",
    "Trainer",
    "ChainTrainer",
    "evaluate",
    "train_and_evaluate",
    "train_to_acceptance",
]

log = logging.getLogger(__name__)

Callback = Callable[["Trainer", dict], None]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; defaults are the full-mode run of notebook 01.

    Attributes:
        n_steps: optimisation steps (one fresh batch each).
        batch_size: samples per step (64 in arXiv:2101.08176).
        lr: Adam learning rate.
        lr_schedule: ``None`` (constant) or ``"cosine"`` (decay to ``lr_min_factor * lr``).
        lr_min_factor: final learning rate of the cosine schedule, relative to ``lr``.
        grad_clip: maximum gradient norm, or ``None`` for no clipping.
        seed: seeds the sampling generator of the training batches.
        log_every: steps between metric records and callbacks.
        cuda_graph: capture the whole training step (sampling, loss, backward, clipping,
            Adam and the NaN guard) as one CUDA graph and replay it, on a GPU. Small
            batches are launch-bound there: a step of the tutorial's flow is a few hundred
            tiny kernels, and one replay costs about one launch. ``None`` (default) uses a
            graph whenever the model is on CUDA, and a flow that cannot be captured (one
            that asks the host mid-step, such as the SU(N ≥ 3) flows' eigendecompositions)
            falls back to ordinary steps with a warning; ``True`` raises instead;
            ``False`` never captures. Ignored on the CPU.
    """

    n_steps: int = 20_000
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str | None = "cosine"
    lr_min_factor: float = 0.01
    grad_clip: float | None = 100.0
    seed: int = 0
    log_every: int = 50
    cuda_graph: bool | None = None

    def __post_init__(self):
        for name in ("n_steps", "batch_size", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.lr_schedule not in (None, "cosine"):
            raise ValueError(f"lr_schedule must be None or 'cosine', got {self.lr_schedule!r}")
        if not 0 < self.lr_min_factor <= 1:
            raise ValueError(f"lr_min_factor must be in (0, 1], got {self.lr_min_factor}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}")
        if self.cuda_graph not in (None, True, False):
            raise ValueError(f"cuda_graph must be None, True or False, got {self.cuda_graph!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate of optimisation step ``step`` (0-based) under the schedule.

        The cosine schedule in closed form, ``lr_min + (lr - lr_min)(1 + cos(π t/T))/2`` with
        ``t = min(step, n_steps)``: steps past ``n_steps`` (resumed training) stay at
        ``lr_min`` rather than climbing back up.
        """
        if self.lr_schedule is None:
            return self.lr
        lr_min = self.lr * self.lr_min_factor
        t = min(step, self.n_steps) / self.n_steps
        return lr_min + 0.5 * (self.lr - lr_min) * (1.0 + math.cos(math.pi * t))

    def to_dict(self) -> dict:
        return asdict(self)


class Trainer:
    """Trains a :class:`~lqft_lab.flows.FlowModel` by minimising the shifted reverse KL.

    Args:
        model: the flow; trained where it lives (move it with ``model.to(device)`` first).
        action: callable ``S(x) -> (B,)``.
        config: hyper-parameters.
        callbacks: functions ``fn(trainer, metrics)`` called every ``log_every`` steps.

    Example:
        >>> trainer = Trainer(build_real_nvp(L=8), Phi4Action(-4, 8), TrainConfig(n_steps=500))
        >>> trainer.add_callback(lambda t, m: print(m["step"], m["ess"]))
        >>> history = trainer.train(progress=True)
    """

    def __init__(self, model, action, config: TrainConfig | None = None, callbacks=()):
        self.model = model
        self.action = action
        self.config = config or TrainConfig()
        self.callbacks: list[Callback] = list(callbacks)
        self.history: list[dict] = []
        self.step = 0
        self._skipped_logged = 0
        self._stop = threading.Event()
        self._running = threading.Event()
        self._elapsed = 0.0
        param = next(model.parameters())
        self._skipped = torch.zeros((), dtype=torch.long, device=param.device)
        # capturable keeps Adam's step counter on the GPU, so a skipped step can be undone
        # there (see _step_or_skip) without asking the host, and lets the step be captured
        # in a CUDA graph; the learning rate is then a device tensor that the schedule
        # refills, so a captured step reads the current value. On the CPU the fused kernel
        # is several times faster than the per-tensor loop for a flow's many small tensors.
        on_cuda = param.is_cuda
        self.optimizer = torch.optim.Adam(
            model.parameters(),
            lr=torch.tensor(self.config.lr, device=param.device) if on_cuda else self.config.lr,
            capturable=on_cuda,
            fused=True if param.device.type == "cpu" else None,
        )
        self.generator = torch.Generator(device=param.device).manual_seed(self.config.seed)
        # A separate CPU generator for the acceptance estimate, so logging never changes
        # the training batches.
        self._mh_generator = torch.Generator().manual_seed(self.config.seed + 1)
        self._lr = self.config.lr  # what the optimiser holds
        use_graph = on_cuda and self.config.cuda_graph is not False
        self._graph = _GraphedStep() if use_graph else None

    def add_callback(self, fn: Callback) -> None:
        """Register ``fn(trainer, metrics)``, called every ``log_every`` steps."""
        self.callbacks.append(fn)

    @property
    def skipped(self) -> int:
        """Steps whose update was skipped for a non-finite loss or gradient (reads the device)."""
        return int(self._skipped)

    @property
    def running(self) -> bool:
        return self._running.is_set()

    @property
    def uses_cuda_graph(self) -> bool:
        """Whether training steps are replays of a captured CUDA graph (see ``TrainConfig``)."""
        return self._graph is not None and self._graph.graph is not None

    def stop(self) -> None:
        """Ask :meth:`train` to return after the current step (safe from any thread).

        The request holds until a :meth:`train` call has honoured it: a stop that arrives
        while another thread is still entering :meth:`train` is not lost (and one made while
        idle ends the next call at once).
        """
        self._stop.set()

    def train(self, n_steps: int | None = None, progress: bool = False) -> list[dict]:
        """Run ``n_steps`` more steps (default: until ``config.n_steps`` in total).

        Returns:
            ``self.history``, the list of logged metric dicts.
        """
        target = self.config.n_steps if n_steps is None else self.step + int(n_steps)
        self._running.set()
        bar = tqdm(total=target - self.step, disable=not progress, desc="training", leave=False)
        t0 = time.perf_counter() - self._elapsed
        try:
            self.model.train()
            while self.step < target and not self._stop.is_set():
                logw = self._train_step()
                self.step += 1
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == target:
                    self._elapsed = time.perf_counter() - t0
                    metrics = self._metrics(logw)
                    bar.set_postfix(loss=f"{metrics['loss']:.2f}", ess=f"{metrics['ess']:.2f}")
                    self.history.append(metrics)
                    for fn in self.callbacks:
                        fn(self, metrics)
        finally:
            self._elapsed = time.perf_counter() - t0
            bar.close()
            self.model.eval()
            self._stop.clear()  # the request is honoured: the next train() runs normally
            self._running.clear()
        return self.history

    def _train_step(self) -> torch.Tensor:
        """One optimisation step; returns the batch's detached ``logw = logp - logq``."""
        self._set_lr(self.config.lr_at(self.step))
        if self._graph is not None:
            return self._graph.step(self)
        return self._eager_step()

    def _eager_step(self) -> torch.Tensor:
        """The step itself, op by op (what a CUDA graph captures)."""
        x, logq = self.model.sample(self.config.batch_size, generator=self.generator)
        logp = -self.action(x)
        loss = (logq - logp).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self._step_or_skip(torch.isfinite(loss) & torch.isfinite(grad_norm))
        return (logp - logq).detach()

    def _set_lr(self, lr: float) -> None:
        if lr == self._lr:  # a constant schedule writes once, not a kernel per step
            return
        self._lr = lr
        for group in self.optimizer.param_groups:
            if torch.is_tensor(group["lr"]):
                group["lr"].fill_(lr)  # queued on the device, no host round trip
            else:
                group["lr"] = lr

    @torch.no_grad()
    def _step_or_skip(self, ok: torch.Tensor) -> None:
        """Adam step if ``ok`` (a bool tensor), else leave weights and Adam's state untouched.

        On the CPU the decision is taken on the host, which costs nothing there. On a GPU,
        deciding on the host would stop it every step. Instead the step is always taken on
        finite (zeroed) gradients and then undone where ``ok`` is false, by selecting the
        old parameters and optimiser state: a skipped step changes nothing, moments and step
        count included. The copies cost one model's worth of memory (13k numbers for the
        tutorial's flow) and a few hundred small kernels, which is why the CPU does not
        take this path.
        """
        if not ok.is_cuda:
            if bool(ok):
                self.optimizer.step()
            else:
                self._skipped += 1
            return
        params = [p for p in self.model.parameters() if p.grad is not None]
        for p in params:
            p.grad = torch.where(ok, p.grad, torch.zeros_like(p.grad))  # no NaN into Adam
        state = [self.optimizer.state[p] for p in params]
        old_params = [p.detach().clone() for p in params]
        old_state = [{k: v.clone() for k, v in st.items() if torch.is_tensor(v)} for st in state]
        self.optimizer.step()
        for p, old in zip(params, old_params, strict=True):
            p.copy_(torch.where(ok, p, old))
        for st, old in zip(state, old_state, strict=True):
            for key, value in old.items():
                st[key].copy_(torch.where(ok.to(value.device), st[key], value))
        self._skipped += (~ok).long()

    def _metrics(self, logw: torch.Tensor) -> dict:
        skipped = self.skipped  # logging is the one place that reads the device
        if skipped > self._skipped_logged:
            log.warning(
                "%d step(s) with a non-finite loss or gradient skipped by step %d (%d in all)",
                skipped - self._skipped_logged,
                self.step,
                skipped,
            )
            self._skipped_logged = skipped
        logw = logw.double().cpu()
        finite = torch.isfinite(logw)
        if finite.all():
            _, accepted = independence_metropolis(logw, torch.zeros_like(logw), self._mh_generator)
            acceptance = accepted[1:].double().mean().item()
            ess = _ess(logw)
        else:
            acceptance, ess = float("nan"), float("nan")
        return {
            "step": self.step,
            "loss": (-logw).mean().item(),
            "ess": ess,
            "acceptance": acceptance,
            "lr": self.config.lr_at(self.step),  # that of the next step
            "skipped": skipped,
            "time": self._elapsed,
        }


class ChainTrainer(Trainer):
    """Trains a flow by maximum likelihood (forward KL) on chains that sample the target.

    The loss is ``-E_{x~p}[log q(x)] = KL(p || q) + const``, estimated on the states of
    ``batch_size`` Markov chains that run beside the training: every step each chain makes
    one flow-MH move (a fresh model draw, accepted by the independence-Metropolis test
    against the current model) and then ``n_local`` moves of ``local``, an exact local
    sampler such as the heatbath. Both moves leave ``p`` invariant, so once the chains have
    forgotten their start (a model draw) the data are draws of ``p``, although no exact
    sampler was needed: the flow brings the chains across barriers and the local moves
    mix them within a sector. This is the adaptive flow-MCMC of Gabrié, Rotskoff and
    Vanden-Eijnden, arXiv:2105.12603.

    Why it helps: the gradient of the reverse KL, the loss of :class:`Trainer`, is an
    average over model draws in which a few draws of large weight dominate once the flow
    is good (at β = 6 in notebook 02 the top 1% of draws carry 86% of its squared norm),
    so training stalls or drifts. The forward-KL gradient is an ordinary average of
    ``∇ log q`` over target draws. On the β = 6 U(1) flow of notebook 02 at L = 8, where
    reverse-KL training only made it worse, 3000 steps lowered the reverse KL from 2.81 to
    1.53 nats (``data/README.md``).
    The two losses ask different things (forward KL penalises missing mass, reverse KL
    wasted mass); the metrics logged are still those of :class:`Trainer`, measured on the
    step's fresh model draws, so ``loss`` stays the reverse-KL estimate a dashboard plots.

    The exactness of a flow-MH chain never depends on how the flow was trained: the chains
    here only supply training data, and a chain started from the final model is exact.

    Args:
        model, action, config, callbacks: as for :class:`Trainer`. ``config.cuda_graph``
            must not be ``True``: local samplers ask the host (the heatbath's rejection
            rounds), so steps run op by op.
        local: a sampler with ``init(x) -> state`` and ``step(state, generator) ->
            (state, info)`` whose ``state.x`` holds the fields, leaving ``exp(-S)``
            invariant (e.g. :class:`~lqft_lab.samplers.U1Heatbath`), or ``None`` for
            flow-MH moves alone.
        n_local: local moves per training step.

    Attributes:
        chain_acceptance: flow-MH acceptance of the chains' moves, averaged over the steps
            since the last log (also logged as ``"chain_acceptance"``).
    """

    def __init__(
        self,
        model,
        action,
        config: TrainConfig | None = None,
        local=None,
        n_local: int = 1,
        callbacks=(),
    ):
        config = config or TrainConfig()
        if config.cuda_graph is True:
            raise ValueError("ChainTrainer runs steps op by op; cuda_graph=True cannot be honoured")
        _check_int("n_local", n_local, 0)
        if local is not None:
            _check_local_sampler(local)
        super().__init__(model, action, replace(config, cuda_graph=False), callbacks)
        self._flow_mh = FlowMetropolis(model, action, batch_size=config.batch_size)
        self.local = local
        self.n_local = n_local if local is not None else 0
        self.x: torch.Tensor | None = None  # the chains' current fields
        self.chain_acceptance = float("nan")
        self._accepted: list[torch.Tensor] = []

    def _eager_step(self) -> torch.Tensor:
        batch = self.config.batch_size
        if self.x is None:
            with torch.no_grad():
                self.x, _ = self.model.sample(batch, generator=self.generator)
        logq = self.model.log_prob(self.x)
        loss = -logq.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        with torch.no_grad():  # the flow-MH move, with the weights the loss was taken at
            state = FlowMCMCState(x=self.x, logp=-self.action(self.x), logq=logq.detach())
            state, info = self._flow_mh.step(state, self.generator)
        self._step_or_skip(torch.isfinite(loss) & torch.isfinite(grad_norm))
        x = state.x
        if self.n_local:
            x = _local_moves(self.local, x, self.n_local, self.generator)
        self.x = x.detach()
        self._accepted.append(info.accepted)
        return info.logw.detach()

    def _metrics(self, logw: torch.Tensor) -> dict:
        if self._accepted:
            self.chain_acceptance = torch.cat(self._accepted).double().mean().item()
            self._accepted = []
        return {**super()._metrics(logw), "chain_acceptance": self.chain_acceptance}


class _GraphedStep:
    """A :class:`Trainer`'s step captured once as a CUDA graph, then replayed.

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


@torch.no_grad()
def evaluate(model, action, n_samples: int = 4096, batch_size: int = 1024, generator=None) -> dict:
    """ESS and independence-Metropolis acceptance of ``model`` on fresh samples.

    Unlike the figures logged during training (measured on the training batch), these come
    from ``n_samples`` new draws, so they are unbiased up to their statistical error: about
    ``1/sqrt(n_samples)`` for the acceptance.

    Returns:
        ``{"ess", "acceptance", "loss", "loss_err", "n"}``: ``loss`` is the reverse-KL loss
        ``E_q[log q + S] = KL(q‖p) - log Z`` on these samples and ``loss_err`` its standard
        error. Unlike the ESS, which a few large weights dominate once it is small, the
        loss averages every sample: the figure that shows whether training helped. All
        but ``n`` are NaN if a weight is not finite.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    was_training = model.training
    model.eval()
    try:
        logw = []
        for start in range(0, n_samples, batch_size):
            x, logq = model.sample(min(batch_size, n_samples - start), generator=generator)
            logw.append((-action(x) - logq).double().cpu())
    finally:
        model.train(was_training)
    logw = torch.cat(logw)
    if not torch.isfinite(logw).all():
        nan = float("nan")
        return {"ess": nan, "acceptance": nan, "loss": nan, "loss_err": nan, "n": n_samples}
    # The weights are on the CPU; a CUDA generator cannot draw the uniforms there.
    mh_gen = generator if generator is not None and generator.device.type == "cpu" else None
    _, accepted = independence_metropolis(logw, torch.zeros_like(logw), mh_gen)
    return {
        "ess": _ess(logw),
        "acceptance": accepted[1:].double().mean().item(),
        "loss": -logw.mean().item(),
        "loss_err": (logw.std() / n_samples**0.5).item(),
        "n": n_samples,
    }


def train_and_evaluate(
    model,
    action,
    n_steps: int,
    *,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    n_eval: int = 4096,
    device: str | torch.device = "cpu",
    progress: bool = False,
    local=None,
    n_local: int = 1,
):
    """Train ``model`` by reverse KL (cosine schedule), then :func:`evaluate` it afresh.

    The recipe of the gauge-theory notebooks' shipped flows: Adam with a cosine decay from
    ``lr`` to ``lr/100``, gradient clip 100, a fresh batch per step seeded by ``seed``; the
    evaluation draws ``n_eval`` new samples from a generator seeded by ``seed + 1``.
    With ``local`` (a local sampler, see :class:`ChainTrainer`) the loss is the forward KL
    on ``batch_size`` chains of flow-MH moves and ``n_local`` local moves per step instead.

    Returns:
        ``(model, trainer, metrics)``: the model in eval mode on ``device``, and ``metrics``
        from :func:`evaluate` on those samples.
    """
    model = model.to(device)
    config = TrainConfig(
        n_steps=n_steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        log_every=max(1, min(50, n_steps // 20)),
    )
    if local is None:
        trainer = Trainer(model, action, config)
    else:
        trainer = ChainTrainer(model, action, config, local=local, n_local=n_local)
    trainer.train(progress=progress)
    model.eval()
    generator = torch.Generator(device=torch.device(device)).manual_seed(seed + 1)
    return model, trainer, evaluate(model, action, n_eval, generator=generator)


def train_to_acceptance(
    trainer: Trainer,
    target: float,
    check_every: int = 500,
    n_samples: int = 4096,
    generator: torch.Generator | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    confirm: bool = True,
) -> list[dict]:
    """Train until the acceptance on fresh samples reaches ``target`` (or the step budget).

    arXiv:1904.12072 trained each ensemble's flow to a common acceptance rate, so that
    differences in autocorrelation between ensembles reflect the physics, not the effort
    spent. Every ``check_every`` steps this measures :func:`evaluate` on ``n_samples`` fresh
    samples and stops at the first check that meets the target. The first check is made
    before any training: a flow that already meets the target is left as it is.

    Args:
        trainer: a :class:`Trainer`; its ``config.n_steps`` is the step budget.
        target: acceptance in ``(0, 1)``.
        check_every: steps between checks (a multiple of ``config.log_every`` keeps the
            checks at logged steps).
        n_samples: fresh samples per check.
        generator: random source for the checks.
        progress: progress bar for the training.
        log: called with one line per check (e.g. ``print``).
        confirm: a check that meets the target is measured again on ``2 * n_samples`` new
            samples, and that measurement decides. With heavy-tailed weights one batch can
            read high: on ensemble E3 of notebook 01b a 4096-sample check read 0.42 where
            16 384 fresh samples gave 0.36, and stopping at the first lucky check leaves
            every flow above its true acceptance by about one check's error.

    If the budget runs out first, the model is put back to the weights of its best check
    (highest acceptance), which with a noisy or drifting training need not be the last;
    Adam's moments are left as they are.

    Returns:
        The checks, ``[{"step", "ess", "acceptance", "n"}, ...]`` (confirmed ones also hold
        ``"screen"``, the first measurement's acceptance); the last is the state the
        model was left in. When the weights were put back, that last entry repeats the best
        check with ``"restored": True``.
    """
    if not 0 < target < 1:
        raise ValueError(f"target acceptance must be in (0, 1), got {target}")
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be a positive integer, got {check_every!r}")
    checks: list[dict] = []
    best: dict = {"acceptance": -math.inf}

    def check() -> bool:
        result = {
            "step": trainer.step,
            **evaluate(trainer.model, trainer.action, n_samples, generator=generator),
        }
        screen = result["acceptance"]
        if confirm and screen >= target:
            result = {
                "step": trainer.step,
                **evaluate(trainer.model, trainer.action, 2 * n_samples, generator=generator),
                "screen": screen,
            }
        checks.append(result)
        if result["acceptance"] > best["acceptance"]:  # a NaN acceptance is never best
            weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            best.update(result, weights=weights)
        if log is not None:
            confirmed = f" (a first {n_samples} read {screen:.3f})" if "screen" in result else ""
            log(
                f"step {result['step']}: acceptance {result['acceptance']:.3f}, "
                f"ESS {result['ess']:.3f} on {result['n']} fresh samples{confirmed}"
            )
        return result["acceptance"] >= target

    met = check()
    while not met and trainer.step < trainer.config.n_steps:
        trainer.train(min(check_every, trainer.config.n_steps - trainer.step), progress=progress)
        met = check()
    if not met and "weights" in best and best["step"] != checks[-1]["step"]:
        trainer.model.load_state_dict(best.pop("weights"))  # in place: a CUDA graph stays valid
        checks.append({**best, "restored": True})
        if log is not None:
            log(f"target not met; weights of step {best['step']} restored")
    return checks
