"""Forward-KL (maximum-likelihood) training of a flow on Markov chains that sample the target.

The loss is ``-E_{x~p}[log q(x)] = KL(p || q) + const``, estimated on the states of chains
that alternate flow-MH and exact local moves (arXiv:2105.12603), so no exact sampler of
``p`` is needed. :class:`ChainTrainer` is a :class:`~lqft_lab.train.Trainer` in everything
else: the same config, callbacks, stop and metrics (plus ``"chain_acceptance"``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from ..samplers.chain import _check_int
from ..samplers.flow_mcmc import (
    FlowMCMCState,
    FlowMetropolis,
    _check_local_sampler,
    _local_moves,
)
from .reverse_kl import TrainConfig, Trainer

__all__ = ["ChainTrainer"]


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
            rounds), so steps run op by op. ``config.gradient`` must be the default: the
            forward-KL loss has no reverse-KL gradient to choose an estimator for.
        local: a sampler with ``init(x) -> state`` and ``step(state, generator) ->
            (state, info)`` whose ``state.x`` holds the fields, leaving ``exp(-S)``
            invariant (e.g. :class:`~lqft_lab.samplers.U1Heatbath`), or ``None`` for
            flow-MH moves alone.
        n_local: local moves per training step.

    Raises:
        TypeError: as :class:`Trainer`, and for a ``local`` that is not a sampler or an
            ``n_local`` that is not an integer.
        ValueError: as :class:`Trainer`, and for ``n_local < 0``, ``cuda_graph=True`` or
            ``gradient="score"``.

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
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
        config = config or TrainConfig()
        if config.cuda_graph is True:
            raise ValueError("ChainTrainer runs steps op by op; cuda_graph=True cannot be honoured")
        if config.gradient != "reparameterization":
            raise ValueError(
                f"gradient={config.gradient!r} does not apply to ChainTrainer: its forward-KL "
                "loss -log q(x) on chain states never differentiates the action"
            )
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
