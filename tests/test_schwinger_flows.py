"""Flows for the Nf = 2 Schwinger model: the score-function gradient estimator agrees with the
reparameterization one in expectation, both train, the score estimator never differentiates
the action, and flow-MH on a trained flow reproduces the det²-reweighted exact
plaquette, condensate and pion correlator."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lqft_lab.actions import Phi4Action
from lqft_lab.actions.schwinger import SchwingerAction
from lqft_lab.analysis import gamma_method
from lqft_lab.exact.schwinger import reweighted_reference
from lqft_lab.exact.u1 import u1_plaquette
from lqft_lab.flows import build_real_nvp, build_u1_flow
from lqft_lab.observables import schwinger_observables
from lqft_lab.studies.schwinger import flow_mh_chain, shipped_schwinger_flow, train_schwinger_flow
from lqft_lab.train import ChainTrainer, TrainConfig, Trainer, evaluate, score_surrogate

DATA = Path(__file__).resolve().parents[1] / "data"

# ================================================================= the surrogate itself


def test_the_score_surrogate_is_the_leave_one_out_estimator():
    """For logq_i = w c_i the surrogate's derivative is (1/B) Σ_i (F_i - b_i) c_i, with b_i
    the mean of the other F_j: checked against that sum, written out, to rounding."""
    gen = torch.Generator().manual_seed(0)
    B = 7
    c = torch.randn(B, generator=gen, dtype=torch.float64)
    logp = torch.randn(B, generator=gen, dtype=torch.float64)
    w = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    logq = w * c
    (grad,) = torch.autograd.grad(score_surrogate(logq, logp), w)
    F = (logq - logp).detach()
    b = torch.stack([torch.cat([F[:i], F[i + 1 :]]).mean() for i in range(B)])
    assert grad.item() == pytest.approx(((F - b) * c).mean().item(), rel=1e-13)
    # log p is only known up to log Z: a constant shift changes nothing
    (shifted,) = torch.autograd.grad(score_surrogate(w * c, logp + 123.0), w)
    assert shifted.item() == pytest.approx(grad.item(), rel=1e-12)


# ============================================ the two estimators estimate the same gradient


def _gradient_samples(model, action, gradient, n_batches, batch_size, seed):
    """``(n_batches, n_params)``: the trainer's gradient estimate on independent batches."""
    config = TrainConfig(batch_size=batch_size, seed=seed, gradient=gradient, grad_clip=None)
    trainer = Trainer(model, action, config)
    params = list(model.parameters())
    rows = []
    for _ in range(n_batches):
        loss, _ = trainer._loss()  # the objective the step differentiates
        grads = torch.autograd.grad(loss, params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def test_both_estimators_give_the_same_expected_gradient():
    """φ⁴ at L = 2 (a double well, m² = -1, λ = 1) and an untrained real NVP flow: the mean
    gradient over 800 batches of 16, projected on three fixed random directions, agrees
    between the estimators within 4σ (σ from the spread over batches: the batches are
    independent). Measured: z = -0.12, 0.04, -2.1 (projections 10.7 ± 2.0, -182.6 ± 6.1,
    -44.8 ± 5.8 against 12.3 ± 13.8, -183.5 ± 23.0, -12.2 ± 14.3).

    The test can fail: the projections are resolved (reparameterization |mean| > 10σ in
    some direction), and a score estimate off by a factor 2 (what a plain-mean baseline
    gives at B = 2) would be more than 4σ away (measured 7.0σ)."""
    model = build_real_nvp(L=2, n_layers=2, hidden=(4,), seed=0).double()
    action = Phi4Action(-1.0, 1.0)
    reparam = _gradient_samples(model, action, "reparameterization", 800, 16, seed=1)
    score = _gradient_samples(model, action, "score", 800, 16, seed=2)
    directions = torch.randn(
        reparam.shape[1], 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    pr, ps = reparam @ directions, score @ directions  # (R, 3)
    mean_r, mean_s = pr.mean(0), ps.mean(0)
    err_r, err_s = pr.std(0) / math.sqrt(len(pr)), ps.std(0) / math.sqrt(len(ps))
    z = (mean_r - mean_s) / torch.sqrt(err_r**2 + err_s**2)
    assert (z.abs() < 4).all(), (z, mean_r, err_r, mean_s, err_s)
    assert (mean_r.abs() / err_r).max() > 10, (mean_r, err_r)
    z_half = (mean_r - 0.5 * mean_s) / torch.sqrt(err_r**2 + (0.5 * err_s) ** 2)
    assert z_half.abs().max() > 4, z_half


class _NoBackward(torch.autograd.Function):
    """The identity, whose backward fails: marks an action that must not be differentiated."""

    @staticmethod
    def forward(ctx, S):
        return S.clone()

    @staticmethod
    def backward(ctx, grad):
        raise AssertionError("the action was differentiated")


class _GuardedAction:
    """An action whose value refuses autograd, recording whether its input carried gradient."""

    def __init__(self, action):
        self.action = action
        self.inputs_with_grad = 0

    def __call__(self, x):
        self.inputs_with_grad += int(x.requires_grad)
        return _NoBackward.apply(self.action(x))


def test_the_score_estimator_never_differentiates_the_action():
    """Score steps run with an action whose backward raises, and hand it fields without
    gradient; the same action breaks the first reparameterization step (so it can fail)."""
    action = _GuardedAction(SchwingerAction(1.0, 0.2))
    model = build_u1_flow(4, n_layers=2, hidden=(4,), seed=0).double()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(
        model, action, TrainConfig(n_steps=3, batch_size=8, log_every=1, lr=1e-2, gradient="score")
    )
    history = trainer.train()
    assert action.inputs_with_grad == 0
    assert trainer.skipped == 0 and len(history) == 3
    assert all(math.isfinite(m["loss"]) for m in history)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    reparam = Trainer(model, action, TrainConfig(n_steps=1, batch_size=8))
    with pytest.raises(AssertionError, match="differentiated"):
        reparam.train()


def test_a_score_step_with_a_non_finite_draw_changes_nothing():
    """A NaN in the drawn fields skips the step (log_prob would refuse them) and is counted."""
    model = build_real_nvp(L=2, n_layers=2, hidden=(4,), seed=0)
    trainer = Trainer(
        model,
        Phi4Action(1.0, 0.0),
        TrainConfig(n_steps=2, batch_size=4, log_every=1, gradient="score"),
    )
    sample = model.sample

    def poisoned(n, generator=None):
        x, logq = sample(n, generator=generator)
        return x.index_fill(1, torch.tensor([0]), math.nan), logq

    model.sample = poisoned
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train(1)
    assert trainer.skipped == 1
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    del model.sample  # the real one again: the next step trains
    trainer.train(1)
    assert trainer.skipped == 1
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


def test_the_score_estimator_is_refused_where_it_cannot_run():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(gradient="score", batch_size=1)
    with pytest.raises(ValueError, match="cuda_graph"):
        TrainConfig(gradient="score", cuda_graph=True)
    with pytest.raises(ValueError, match="gradient"):
        TrainConfig(gradient="reinforce")
    model = build_real_nvp(L=2, n_layers=2, hidden=(4,), seed=0)
    with pytest.raises(ValueError, match="gradient"):
        ChainTrainer(model, Phi4Action(1.0, 0.0), TrainConfig(gradient="score"))
    assert TrainConfig().gradient == "reparameterization"  # the default is unchanged
    assert not Trainer(model, Phi4Action(1.0, 0.0), TrainConfig(gradient="score")).uses_cuda_graph


# ================================================================ training on the Schwinger model


@pytest.mark.parametrize("gradient", ["reparameterization", "score"])
def test_both_estimators_lower_the_kl_on_the_schwinger_model(gradient):
    """SchwingerAction(β = 1, κ = 0.2) at L = 4 in float64: 30 steps of batch 32 lower the
    reverse-KL loss E_q[log q + S] on 512 fresh samples by far more than 4σ. Measured:
    -58.70 ± 0.13 at initialisation, -61.15 ± 0.08 (score) and -61.29 ± 0.08
    (reparameterization) after."""
    action = SchwingerAction(1.0, 0.2)
    arch = dict(n_layers=4, hidden=(8,))
    start = build_u1_flow(4, **arch, seed=0).double()  # the weights training starts from
    model, history = train_schwinger_flow(
        1.0, 0.2, 4, **arch, n_steps=30, batch_size=32, lr=1e-2, gradient=gradient, seed=0
    )
    assert model.config.n_layers == 4 and next(model.parameters()).dtype == torch.float64
    assert not model.training
    assert history[-1]["step"] == 30 and history[-1]["skipped"] == 0
    before = evaluate(start, action, 512, generator=torch.Generator().manual_seed(5))
    after = evaluate(model, action, 512, generator=torch.Generator().manual_seed(5))
    sigma = math.hypot(before["loss_err"], after["loss_err"])
    assert after["loss"] < before["loss"] - 4 * sigma, (before, after)


# ================================================ flow-MH against the det²-reweighted exact draws


@pytest.mark.slow
def test_flow_mh_reproduces_the_reweighted_exact_values():
    """A flow trained for 100 score steps on SchwingerAction(β = 1, κ = 0.2) at 4×4 drives
    64 flow-MH chains of 300 steps; their plaquette, condensate and C_π(1) (Γ-method, chains
    as replicas) agree with 16384 exact pure-gauge draws reweighted by (det D)² within 4σ.

    The test can fail: the determinant matters at this precision. The quenched plaquette
    u1_plaquette(1, 4) = 0.4464 would fail the same comparison (> 4σ from the reweighted
    value, measured 0.4612 ± 0.0011 on 20000 draws), so a chain that lost the determinant
    would be caught. Measured: chain 0.4605 ± 0.0017 (τ_int 1.25, acceptance 0.65) against
    0.4601 ± 0.0012 (weights' ESS 0.92), z = 0.17; the quenched value is 6.6σ away."""
    beta, kappa, L = 1.0, 0.2, 4
    action = SchwingerAction(beta, kappa)
    model, _ = train_schwinger_flow(
        beta, kappa, L, n_layers=8, hidden=(8, 8), n_steps=100, lr=1e-2, gradient="score"
    )
    observables = schwinger_observables(kappa)  # plaquette, condensate, pion_1
    chain = flow_mh_chain(
        model, action, 300, 64, torch.Generator().manual_seed(1), observables=observables
    )
    assert set(chain.observables) == {"plaquette", "condensate", "pion_1"}
    assert chain.observables["plaquette"].shape == (300, 64)
    # exact pure-gauge draws reweighted by (det D)² (sample_u1_exact + slogdet)
    reference = reweighted_reference(
        beta, kappa, L, 16384, observables, torch.Generator().manual_seed(2)
    )
    for name, series in chain.observables.items():
        estimate = gamma_method(series.double().numpy(), warn=False)
        ref, ref_err = reference.values[name], reference.errors[name]
        sigma = math.hypot(estimate.error, ref_err)
        z = (estimate.value - ref) / sigma
        assert abs(z) < 4, (name, estimate.value, estimate.error, chain.acceptance, ref, ref_err)
        if name == "plaquette":
            quenched = u1_plaquette(beta, L)
            assert abs(quenched - ref) / sigma > 4, (quenched, ref, sigma)
    assert chain.acceptance > 0.3  # the trained flow is a useful proposal


def test_flow_mh_chain_runs_from_an_untrained_flow():
    """Shapes and bookkeeping on a short run; exactness is the slow test's business."""
    model = build_u1_flow(4, n_layers=2, hidden=(4,), seed=0).double()
    chain = flow_mh_chain(
        model, SchwingerAction(1.0, 0.2), 3, 4, torch.Generator().manual_seed(0), thermalize=1
    )
    assert {k: tuple(v.shape) for k, v in chain.observables.items()} == {
        "plaq": (3, 4), "Q": (3, 4), "chi_t": (3, 4),
    }  # fmt: skip
    assert np.isfinite(chain.accepted.numpy()).all() and 0 <= chain.acceptance <= 1
    assert torch.allclose(chain.observables["chi_t"], chain.observables["Q"] ** 2 / 16)


def test_training_continues_from_a_given_flow():
    """``model=``: the given flow's weights are the start (not a fresh build) and move."""
    start = build_u1_flow(4, n_layers=2, hidden=(4,), seed=3).double()
    before = {k: v.clone() for k, v in start.state_dict().items()}
    fresh, _ = train_schwinger_flow(1.0, 0.2, 4, n_layers=2, hidden=(4,), n_steps=1, lr=1e-9)
    model, history = train_schwinger_flow(1.0, 0.2, 4, n_steps=3, lr=1e-2, model=start)
    assert model is start and len(history) >= 1
    moved = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert moved, "training did not change the given flow"
    # the start was not rebuilt from the seed: a tiny step from a fresh build stays far away
    key = next(k for k in before if before[k].is_floating_point() and before[k].numel() > 1)
    assert not torch.allclose(model.state_dict()[key], fresh.state_dict()[key], atol=1e-3)


# ================================================================= the shipped flows


def test_every_shipped_schwinger_flow_is_for_the_point_its_name_says():
    """data/models/schwinger_L<L>_b<β>_k<κ>: SchwingerAction(β, κ) recorded, links (2, L, L),
    a recorded quality on >= 4096 fresh samples, and a row in data/README.md."""
    models = sorted((DATA / "models").glob("schwinger_*.safetensors"))
    assert len(models) >= 3  # the fast point, the 8×8 test's point, the full point
    readme = (DATA / "README.md").read_text()
    for path in models:
        L, beta, kappa = re.fullmatch(r"schwinger_L(\d+)_b([\d.]+)_k([\d.]+)", path.stem).groups()
        shipped = shipped_schwinger_flow(float(beta), float(kappa), int(L))
        assert shipped is not None and shipped.model.lattice_shape == (2, int(L), int(L))
        assert shipped.meta["metrics"]["ess_samples"] >= 4096
        assert f"| `{path.name}` |" in readme, path.name


def test_the_fast_points_shipped_flow_is_as_good_as_recorded():
    """The loss E_q[log q + S] on 4096 fresh samples agrees with the one recorded when it was
    saved (8192 other samples), within 4σ of the two standard errors combined."""
    shipped = shipped_schwinger_flow(2.0, 0.24, 4)
    recorded = shipped.meta["metrics"]["loss"]
    q = evaluate(
        shipped.model, SchwingerAction(2.0, 0.24), 4096, generator=torch.Generator().manual_seed(9)
    )
    recorded_err = 0.012  # the saved loss's standard error, −72.756 ± 0.012 (data/README.md)
    assert abs(q["loss"] - recorded) < 4 * math.hypot(q["loss_err"], recorded_err), (q, recorded)
    assert q["ess"] > 0.3, q
