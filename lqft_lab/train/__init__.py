"""Training flows, and measuring them on fresh samples.

What every member promises:

* :class:`TrainConfig` (:mod:`~lqft_lab.train.reverse_kl`) holds the hyper-parameters and
  rejects bad ones with a ``ValueError``; its defaults are notebook 01's full-mode run.
* :class:`Trainer` (:mod:`~lqft_lab.train.reverse_kl`) minimises the shifted reverse KL
  (arXiv:2101.08176 eq. (19)) ``L(q) = E_{x~q}[log q(x) + S(x)] = KL(q || p) - log Z`` on a
  fresh batch from the model every step: only samples of the model are needed, never
  samples of ``p``. It reports through callbacks (dashboards subscribe; the trainer never
  draws) and can be stopped from another thread with :meth:`Trainer.stop`. Every
  ``log_every`` steps the metrics dict
  ``{"step", "loss", "ess", "acceptance", "lr", "skipped", "time"}`` is appended to
  ``trainer.history`` and passed to each callback; ``ess`` and ``acceptance`` there are
  measured on the training batch and are biased high for small batches. A step with a
  non-finite loss or gradient changes nothing and is counted in ``"skipped"``. On a GPU the
  step is captured once as a CUDA graph and replayed (:mod:`~lqft_lab.train.cuda_graph`;
  ``TrainConfig.cuda_graph`` says when). ``TrainConfig.gradient`` (one of
  :data:`GRADIENTS`) picks the gradient estimator: ``"reparameterization"`` (autograd through
  flow and action, the default) or ``"score"`` (REINFORCE, arXiv:2308.13294: the action is
  never differentiated; never graphed).
* :func:`score_surrogate` (:mod:`~lqft_lab.train.score`) is the scalar whose gradient is the
  score-function estimate with a leave-one-out baseline (exactly unbiased).
* :class:`ChainTrainer` (:mod:`~lqft_lab.train.forward_kl`) is a :class:`Trainer` whose loss
  is the forward KL ``-E_{x~p}[log q(x)]``, on chains of flow-MH and local moves that
  sample ``p`` (arXiv:2105.12603); it logs the same metrics plus ``"chain_acceptance"``.
* :func:`evaluate` (:mod:`~lqft_lab.train.evaluation`) measures ESS, independence-Metropolis
  acceptance and the reverse-KL loss on fresh samples: quote these figures, on at least
  4096 samples (see :mod:`lqft_lab.analysis.ess`), not the logged ones.
* :func:`train_and_evaluate` trains with the recipe of the shipped flows, then runs
  :func:`evaluate`; :func:`train_to_acceptance` trains a :class:`Trainer` until
  :func:`evaluate` reads a target acceptance, or puts back the best check's weights.
"""

from .evaluation import evaluate, train_and_evaluate, train_to_acceptance
from .forward_kl import ChainTrainer
from .reverse_kl import GRADIENTS, TrainConfig, Trainer
from .score import score_surrogate

__all__ = [
    "TrainConfig",
    "Trainer",
    "GRADIENTS",
    "score_surrogate",
    "ChainTrainer",
    "evaluate",
    "train_and_evaluate",
    "train_to_acceptance",
]
