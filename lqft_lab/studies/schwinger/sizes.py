"""Notebook 04's sizes per mode: chains, integrator settings, training budgets."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ... import checks
from .. import _checks


@dataclass(frozen=True)
class SchwingerSizes:
    """Chains and budgets of notebook 04; the defaults are full mode's (L = 16 near κ_c).

    Chains are ``(chains, production steps)``; a step is one unit-length HMC trajectory
    (``step_size · n_md = 1``) or one flow proposal per chain.

    Attributes:
        hmc_2x2: exact-determinant HMC and pseudofermion HMC on the 2×2 lattice, against
            :func:`~lqft_lab.exact.schwinger.schwinger_2x2`.
        hmc, pf_hmc: exact-determinant HMC and pseudofermion HMC on the study lattice.
        step_size, n_md, integrator: their integrator step, steps per trajectory and
            integrator (``"leapfrog"`` or ``"omelyan"``). Near ``κ_c`` the fermion force
            spikes where a near-zero mode is close; a small leapfrog step rides them out
            better than Omelyan's larger one.
        even_odd: even/odd preconditioned pseudofermion HMC (about 2.3× fewer CG iterations).
        cg_max_iter: the CG iteration limit of pseudofermion HMC's solves (``None``: CG's
            default, twice the unknowns); near ``κ_c`` a trajectory passing close to a
            near-zero mode needs more.
        cg_tol, cg_force_tol: relative residuals of pseudofermion HMC's energy and force
            solves (:class:`~lqft_lab.actions.PseudofermionAction`'s ``tol`` and
            ``force_tol``). At L = 16 near ``κ_c`` CG stagnated once at 1.4·10⁻¹⁰ after
            4096 iterations (one solve in about 5·10⁴), so full mode asks 10⁻⁹ of the
            energies (an error in ``S_pf`` of at most ``10⁻⁹ |φ|²/λ_min``) and 10⁻⁸ of the
            forces, which cannot bias the chain (a deterministic force keeps the
            integrator reversible).
        pf_check_samples: exact pure-gauge draws for the ``⟨S_pf⟩ = 2V`` heatbath check.
        thermalize: trajectories (or flow steps) discarded first.
        train_steps, score_steps: reverse-KL steps of the flow with the reparameterization
            and with the score-function gradient (the comparison of the two estimators).
        train_batch, lr, n_layers, hidden: the flow's training batch, learning rate and
            architecture (:func:`train_schwinger_flow`).
        flow: flow-MH chains; ``chains · steps >= 10⁴`` proposals for the acceptance.
        flow_thermalize: flow-MH steps discarded first. The chains start from the flow's
            own draws. The shipped L = 16 flow is weak (its draws' plaquette is 0.717
            against the target's 0.754): 64 chains of 50 + 160 steps stayed 6σ off, and 16
            chains of 200 + 1 000 accepted 0.033 with τ_int ≳ 180 proposals (window not
            converged; plaquette −2.4σ on those too-small errors). So full mode discards
            500 and keeps 4 000 steps per chain: minutes on a GPU, about 50 minutes on 2
            CPU cores. A better-trained flow is the real cure.
        ess_samples: fresh flow samples for the ESS (at least 4096, DESIGN.md).
        reference_samples: exact pure-gauge draws reweighted by ``(det D)²``.
        reference_max_volume: the largest ``V`` for which those draws are made; beyond it
            the weights' ESS collapses (and dense ``D`` gets slow), and samplers are compared
            with exact-determinant HMC instead.
        scan_L: lattice of the near-zero-mode scan along ``κ`` (charge-one configuration).
        joint_train_steps, joint_blocks, joint_couplings, joint_lr: part 2's pseudofermion
            flow (linear blocks and nonlinear coupling pairs of
            :class:`~lqft_lab.flows.PseudofermionFlow`) and its joint reverse-KL training,
            batches of ``train_batch``.
        joint: chains of each part-2 sampler (joint flow-MH, MH-within-Gibbs, the exact
            conditional), ``chains · steps >= 10⁴``.
        joint_ess_samples: draws for the marginal against joint ESS.
        scaling_L: lattice extents (multiples of 4) of the proposal-cost scan
            (:func:`~lqft_lab.studies.schwinger.proposal_costs`), at least two.
    """

    hmc_2x2: tuple[int, int] = (64, 500)
    hmc: tuple[int, int] = (4, 300)
    pf_hmc: tuple[int, int] = (8, 300)
    step_size: float = 0.0625
    n_md: int = 16
    integrator: str = "leapfrog"
    even_odd: bool = True
    cg_max_iter: int | None = 4096
    cg_tol: float = 1e-9
    cg_force_tol: float = 1e-8
    pf_check_samples: int = 1024
    thermalize: int = 50
    train_steps: int = 200
    score_steps: int = 200
    train_batch: int = 16
    lr: float = 1e-3
    n_layers: int = 16
    hidden: tuple[int, ...] = (8, 8)
    flow: tuple[int, int] = (16, 4000)
    flow_thermalize: int = 500
    ess_samples: int = 4096
    reference_samples: int = 65_536
    reference_max_volume: int = 64
    scan_L: int = 16
    joint_train_steps: int = 500
    joint_blocks: int = 2
    joint_couplings: int = 1
    joint_lr: float = 3e-3
    joint: tuple[int, int] = (64, 160)
    joint_ess_samples: int = 4096
    scaling_L: tuple[int, ...] = (8, 16, 32, 64)

    def __post_init__(self):
        """Refuse sizes no run could use (each ``TypeError``/``ValueError`` names the field)."""
        for name in ("hmc_2x2", "hmc", "pf_hmc", "flow", "joint"):
            _checks.chains_and_steps(name, getattr(self, name), min_steps=4)
        checks.positive("step_size", self.step_size)
        checks.choice("integrator", self.integrator, ("leapfrog", "omelyan"))
        checks.boolean("even_odd", self.even_odd)
        for name in ("cg_tol", "cg_force_tol"):
            checks.real(name, getattr(self, name), low=0, high=1, low_open=True, high_open=True)
        if self.cg_max_iter is not None:
            checks.integer("cg_max_iter", self.cg_max_iter, low=1)
        checks.integer("pf_check_samples", self.pf_check_samples, low=2)
        checks.positive("lr", self.lr)
        for name in ("n_md", "train_steps", "score_steps", "n_layers", "train_batch"):
            checks.integer(name, getattr(self, name), low=1)
        checks.integer("thermalize", self.thermalize, low=0)
        checks.integer("flow_thermalize", self.flow_thermalize, low=0)
        checks.integer("ess_samples", self.ess_samples, low=4096)
        checks.integer("reference_samples", self.reference_samples, low=2)
        checks.integer("reference_max_volume", self.reference_max_volume, low=0)
        checks.integer("scan_L", self.scan_L, low=2)
        for name in ("joint_train_steps", "joint_blocks"):
            checks.integer(name, getattr(self, name), low=1)
        checks.integer("joint_couplings", self.joint_couplings, low=0)
        checks.positive("joint_lr", self.joint_lr)
        scan = tuple(_checks.integers("scaling_L", self.scaling_L, low=4))
        if len(scan) < 2 or any(L % 4 for L in scan):
            raise ValueError(f"scaling_L must be two or more multiples of 4, got {scan}")
        object.__setattr__(self, "scaling_L", scan)  # a list from papermill's YAML too
        checks.integer("joint_ess_samples", self.joint_ess_samples, low=4096)

    @classmethod
    def for_mode(cls, mode: str, **changes) -> SchwingerSizes:
        """``"full"`` (the defaults) or ``"fast"`` (L = 4 on a CPU: two to three minutes),
        with ``changes`` (field → value) applied on top: e.g. a smoke run of full mode's code
        path at tiny sizes, ``for_mode("full", hmc=(2, 8), pf_hmc=(2, 8), train_steps=2)``.

        Fast mode runs many short chains: at L = 4 a step's cost is per-operation overhead,
        nearly the same for 16 or 128 chains, while the statistics grow with the chains.

        Raises:
            ValueError: for any other mode, a field ``SchwingerSizes`` does not have, or a
                value it refuses (naming the field).
        """
        mode = checks.choice("mode", mode, ("fast", "full"))
        unknown = sorted(set(changes) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"SchwingerSizes has no field {unknown[0]!r}: cannot change it")
        return replace(cls._of_mode(mode), **changes)

    @classmethod
    def _of_mode(cls, mode: str) -> SchwingerSizes:
        if mode == "full":
            return cls()
        return replace(
            cls(),
            hmc_2x2=(64, 60),
            hmc=(128, 60),
            pf_hmc=(64, 80),
            step_size=0.2,
            n_md=5,
            even_odd=False,
            cg_max_iter=None,
            cg_tol=1e-10,
            cg_force_tol=1e-10,
            pf_check_samples=8192,
            thermalize=15,
            train_steps=200,
            score_steps=100,
            lr=1e-2,
            n_layers=8,
            train_batch=64,
            flow=(128, 80),
            flow_thermalize=15,
            reference_samples=8192,
            scan_L=12,
            joint_train_steps=150,
            scaling_L=(4, 8, 16, 32),
        )
