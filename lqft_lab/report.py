"""Turn a notebook run's ``metrics.json`` into a Markdown report for ``reports/gpu/``.

The contract: :data:`TARGETS` holds, per notebook, the figures its issue sets targets for;
:func:`check_targets` compares a run's recorded figures with them (a figure that was not
recorded, or recorded as ``null``, misses its target); :func:`render_report` writes one
Markdown page with the run's wall time and peak memory per notebook and every target with
its value and ✓/✗; :func:`write_report` saves it as ``<date>-<gpu>.md`` together with a copy
of the metrics (``<date>-<gpu>-metrics.json``). ``make gpu`` calls it through
``python -m lqft_lab report``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Target", "TARGETS", "TargetCheck", "check_targets", "render_report", "write_report"]


@dataclass(frozen=True)
class Target:
    """A bound on one recorded figure: ``value >= bound``, or ``|value| < bound``.

    Attributes:
        figure: the name passed to ``record()``.
        kind: ``">="`` or ``"|x|<"``.
        bound: the number the figure is compared with.
        why: where the target comes from, shown in the report.
    """

    figure: str
    kind: str
    bound: float
    why: str = ""

    def __post_init__(self):
        if self.kind not in (">=", "|x|<"):
            raise ValueError(f"target kind must be '>=' or '|x|<', got {self.kind!r}")

    def met_by(self, value: Any) -> bool:
        """Whether ``value`` meets the target (``None``, NaN or a non-number never does)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        return value >= self.bound if self.kind == ">=" else abs(value) < self.bound

    def __str__(self) -> str:
        bound = f"{self.bound:g}"
        return f"≥ {bound}" if self.kind == ">=" else f"within ±{bound}"


# Full-mode targets, per notebook, from the notebook's issue (and DESIGN.md's rules for
# quoting ESS and acceptance: >= 4096 fresh samples, >= 10^4 proposals).
TARGETS: dict[str, tuple[Target, ...]] = {
    "01_phi4_real_nvp": (
        Target("ess", ">=", 0.5, "ESS on fresh samples"),
        Target("acceptance", ">=", 0.5, "flow-MH acceptance"),
        Target("chi2_pull", "|x|<", 2, "χ₂ flow-MH vs HMC, in σ"),
        Target("chi2_pull_local", "|x|<", 4, "χ₂ flow-MH vs local Metropolis, in σ"),
        Target("E_pull", "|x|<", 4, "energy flow-MH vs HMC, in σ"),
        Target("free_chi2_pull", "|x|<", 4, "free-field χ₂, HMC vs exact, in σ"),
        Target("free_phi2_pull", "|x|<", 4, "free-field ⟨φ²⟩, HMC vs exact, in σ"),
        Target("n_proposals", ">=", 10_000, "proposals behind the acceptance"),
        Target("ess_samples", ">=", 4096, "fresh samples behind the ESS"),
    ),
    "01b_phi4_at_scale": (
        Target("z_flow_score", "|x|<", 1, "flow-MH z of χ₂ compatible with 0 (|z| < 2σ or < 0.3)"),
        Target("z_hmc", ">=", 1, "HMC z of χ₂ (arXiv:1904.12072: 1.4–2.7)"),
        *(
            Target(f"mpL_pull_E{i}", "|x|<", 3, f"m_p L of E{i}, flow-MH vs arXiv:1904.12072, in σ")
            for i in range(1, 6)
        ),
    ),
    "02_u1_equivariant_flows": (
        Target("acceptance", ">=", 0.5, "flow-MH acceptance at L = 8, β = 2"),
        Target("tau_Q_hmc_over_flow_b6", ">=", 20, "τ_int(Q) HMC / flow-MH at L = 16, β = 6"),
        Target("plaq_pull", "|x|<", 3, "⟨cos θ_P⟩ flow-MH vs exact at L = 8, β = 2, in σ"),
        Target("chi_t_pull", "|x|<", 3, "χ_t flow-MH vs exact at L = 8, β = 2, in σ"),
        *(
            Target(f"{obs}_pull_flow_b{b}", "|x|<", 3, f"{name} flow-MH vs exact, L = 16, β = {b}")
            for b in (2, 4, 6)
            for obs, name in (("plaq", "⟨cos θ_P⟩"), ("chi_t", "χ_t"))
        ),
    ),
    "03_su3_spectral_flows": (
        *(
            Target(f"ess_single_su3_{t}", ">=", 0.9, f"single-matrix SU(3) ESS, target {t}")
            for t in ("a", "b", "c")
        ),
        *(
            Target(f"acceptance_lattice_su{n}", ">=", 0.3, f"flow-MH acceptance, SU({n}), 8×8")
            for n in (2, 3)
        ),
        *(
            Target(f"plaq_pull_flow_su{n}", "|x|<", 3, f"SU({n}) plaquette flow-MH vs exact, in σ")
            for n in (2, 3)
        ),
        Target("n_proposals", ">=", 10_000, "proposals behind the acceptance"),
        Target("ess_samples", ">=", 4096, "fresh samples behind the ESS"),
    ),
}


@dataclass(frozen=True)
class TargetCheck:
    """One target of one notebook, with the recorded value (``None`` if not recorded)."""

    notebook: str
    target: Target
    value: Any
    ok: bool


def check_targets(
    metrics: dict, targets: dict[str, tuple[Target, ...]] | None = None
) -> list[TargetCheck]:
    """Compare the figures in ``metrics`` (``metrics.json`` contents) with their targets.

    Only notebooks present in the run's ``_meta`` are checked; a notebook that ran but did
    not record a figure misses that figure's target. A failed notebook's figures (recorded
    before the failure) are compared too; the report shows its status.
    """
    targets = TARGETS if targets is None else targets
    checks = []
    for stem in metrics.get("_meta", {}):
        figures = metrics.get(stem, {})
        for target in targets.get(stem, ()):
            value = figures.get(target.figure)
            checks.append(TargetCheck(stem, target, value, target.met_by(value)))
    return checks


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_report(
    metrics: dict,
    title: str = "GPU run",
    targets: dict[str, tuple[Target, ...]] | None = None,
) -> str:
    """Render a run's metrics as Markdown: one run table, then one figure table per notebook."""
    meta = metrics.get("_meta", {})
    checks = check_targets(metrics, targets)
    lines = [f"# {title}", ""]
    devices = sorted({str(info.get("gpu") or info.get("device")) for info in meta.values()})
    modes = sorted({str(info.get("mode")) for info in meta.values()})
    lines += [
        f"Mode: {', '.join(modes) or '—'}; device: {', '.join(devices) or '—'}. "
        f"Targets met: {sum(c.ok for c in checks)} of {len(checks)}.",
        "",
        "| notebook | status | wall time | peak RSS | peak GPU memory |",
        "|---|---|---|---|---|",
    ]
    for stem, info in meta.items():
        rss, gpu = info.get("peak_rss_mb"), info.get("peak_gpu_mb")
        lines.append(
            f"| {stem} | {info.get('status', '—')} | {info.get('wall_s', 0):.0f} s | "
            f"{f'{rss:.0f} MiB' if rss is not None else 'not recorded'} | "
            f"{f'{gpu:.0f} MiB' if gpu is not None else 'not recorded'} |"
        )
    for stem, info in meta.items():
        lines += ["", f"## {stem}", ""]
        if info.get("status") != "ok":
            lines += [f"Failed: {info.get('error', 'no error recorded')}", ""]
        lines += ["| figure | value | target | | |", "|---|---|---|---|---|"]
        mine = [c for c in checks if c.notebook == stem]
        for c in mine:
            mark = "✓" if c.ok else "✗"
            lines.append(
                f"| {c.target.figure} | {_fmt(c.value)} | {c.target} | {mark} | {c.target.why} |"
            )
        targeted = {c.target.figure for c in mine}
        for name, value in metrics.get(stem, {}).items():
            if name not in targeted and not isinstance(value, list):
                lines.append(f"| {name} | {_fmt(value)} | | | |")
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` → ``"h100-80gb-hbm3"``: a file-name-safe device name."""
    text = re.sub(r"^nvidia\s+", "", text.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def write_report(
    metrics_path: str | os.PathLike,
    out_dir: str | os.PathLike = "reports/gpu",
    date: str | None = None,
    gpu: str | None = None,
) -> Path:
    """Write ``out_dir/<date>-<gpu>.md`` and the metrics beside it; return the report's path.

    Args:
        metrics_path: a ``metrics.json`` written by :func:`lqft_lab.notebooks.run_notebooks`.
        out_dir: folder for the report (created if missing).
        date: ``YYYY-MM-DD``; today when ``None``.
        gpu: device name for the title and file name; by default the ``gpu`` the notebooks
            recorded in ``_meta``, else their ``device``.

    Raises:
        FileNotFoundError: when ``metrics_path`` does not exist.
    """
    metrics_path = Path(metrics_path)
    if not metrics_path.is_file():
        raise FileNotFoundError(
            f"no metrics file at {str(metrics_path)!r}; run the notebooks first"
        )
    metrics = json.loads(metrics_path.read_text())
    date = date or datetime.date.today().isoformat()
    if gpu is None:
        meta = metrics.get("_meta", {}).values()
        names = [m.get("gpu") for m in meta if m.get("gpu")] or [m.get("device") for m in meta]
        gpu = next((n for n in names if n), "unknown")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{date}-{_slug(gpu)}"
    report = out_dir / f"{stem}.md"
    devices = {m.get("device") for m in metrics.get("_meta", {}).values()}
    kind = "GPU run" if "cuda" in devices else "Run"
    report.write_text(render_report(metrics, title=f"{kind}, {date}, {gpu}"))
    (out_dir / f"{stem}-metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return report
