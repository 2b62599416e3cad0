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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import real

__all__ = ["Target", "TARGETS", "TargetCheck", "check_targets", "render_report", "write_report"]


@dataclass(frozen=True)
class Target:
    """A bound on one recorded figure: ``value >= bound``, or ``|value| < bound``.

    Attributes:
        figure: the name passed to ``record()``.
        kind: ``">="`` or ``"|x|<"``.
        bound: the number the figure is compared with.
        why: where the target comes from, shown in the report.

    Raises:
        TypeError: for a ``figure`` or ``why`` that is not a string, or a ``bound`` that is
            not a real number.
        ValueError: for an empty ``figure``, an unknown ``kind``, or a non-finite ``bound``.
    """

    figure: str
    kind: str
    bound: float
    why: str = ""

    def __post_init__(self):
        if not isinstance(self.figure, str):
            raise TypeError(f"figure must be the recorded figure's name, got {self.figure!r}")
        if not self.figure.strip():
            raise ValueError("figure must be a non-empty name, got ''")
        if not isinstance(self.kind, str) or self.kind not in (">=", "|x|<"):
            raise ValueError(f"target kind must be '>=' or '|x|<', got {self.kind!r}")
        object.__setattr__(self, "bound", real("bound", self.bound))
        if not isinstance(self.why, str):
            raise TypeError(f"why must be a string, got {self.why!r}")

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
    "04_schwinger_pseudofermions": (
        Target("S_pf_pull", "|x|<", 4, "pseudofermion heatbath ⟨S_pf⟩ vs 2V, in σ"),
        *(
            Target(f"{obs}_pull_{alg}_2x2", "|x|<", 4, f"{obs}, {alg} vs exact 2×2, in σ")
            for alg in ("hmc", "pf_hmc")
            for obs in ("plaquette", "condensate", "pion_1", "boltzmann")
        ),
        # at L = 16 the reference is pseudofermion HMC's long run (issue 26)
        *(
            Target(f"{obs}_pull_flow_mh", "|x|<", 3, f"{obs}, flow-MH vs pseudofermion HMC, in σ")
            for obs in ("plaquette", "condensate", "pion_1")
        ),
        *(
            Target(f"{obs}_pull_hmc", "|x|<", 4, f"{obs}, exact-det HMC vs pseudofermion HMC, in σ")
            for obs in ("plaquette", "condensate", "pion_1")
        ),
        Target(
            "cost_ratio_condensate_flow_mh_vs_pf_hmc",
            "|x|<",
            1,
            "goal: flow-MH's seconds per independent condensate sample over pseudofermion HMC's",
        ),
        Target("n_proposals", ">=", 10_000, "proposals behind the acceptance"),
        Target("ess_samples", ">=", 4096, "fresh samples behind the ESS"),
    ),
}


@dataclass(frozen=True)
class TargetCheck:
    """One target of one notebook, with the recorded value (``None`` if not recorded).

    Raises:
        TypeError: for a ``notebook`` that is not a string, a ``target`` that is not a
            :class:`Target`, or an ``ok`` that is not a bool.
    """

    notebook: str
    target: Target
    value: Any
    ok: bool

    def __post_init__(self):
        if not isinstance(self.notebook, str):
            raise TypeError(f"notebook must be a notebook's stem, got {self.notebook!r}")
        if not isinstance(self.target, Target):
            raise TypeError(f"target must be a Target, got {type(self.target).__name__}")
        if not isinstance(self.ok, bool):
            raise TypeError(f"ok must be a bool, got {self.ok!r}")


def _check_metrics(metrics, name: str = "metrics") -> None:
    """The shape of ``metrics.json``: ``{stem: {figure: value}, "_meta": {stem: {...}}}``.

    Raises:
        TypeError: for a ``metrics`` (or an entry) that is not a mapping.
        ValueError: for ``_meta`` entries whose run figures are not numbers.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{name} must be a mapping like metrics.json's contents, got {type(metrics).__name__}"
        )
    meta = metrics.get("_meta", {})
    if not isinstance(meta, Mapping):
        raise TypeError(f"{name}['_meta'] must be a mapping of notebook -> run info, got {meta!r}")
    for stem, info in meta.items():
        if not isinstance(stem, str) or not isinstance(info, Mapping):
            raise TypeError(f"{name}['_meta'] must map notebook names to mappings, got {stem!r}")
        for key in ("wall_s", "peak_rss_mb", "peak_gpu_mb"):
            value = info.get(key)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(
                    f"{name}['_meta'][{stem!r}][{key!r}] must be a finite number, got {value!r}"
                )
        figures = metrics.get(stem, {})
        if not isinstance(figures, Mapping):
            raise TypeError(f"{name}[{stem!r}] must be a mapping figure -> value, got {figures!r}")


def _check_targets_table(targets) -> dict[str, tuple[Target, ...]]:
    if targets is None:
        return TARGETS
    if not isinstance(targets, Mapping):
        raise TypeError(f"targets must be a mapping notebook -> Targets, got {targets!r}")
    for stem, listed in targets.items():
        if (
            not isinstance(stem, str)
            or not isinstance(listed, (tuple, list))
            or not all(isinstance(t, Target) for t in listed)
        ):
            raise TypeError(
                f"targets must map notebook names to tuples of Target, got {stem!r}: {listed!r}"
            )
    return targets


def check_targets(
    metrics: dict, targets: dict[str, tuple[Target, ...]] | None = None
) -> list[TargetCheck]:
    """Compare the figures in ``metrics`` (``metrics.json`` contents) with their targets.

    Only notebooks present in the run's ``_meta`` are checked; a notebook that ran but did
    not record a figure misses that figure's target. A failed notebook's figures (recorded
    before the failure) are compared too; the report shows its status.

    Raises:
        TypeError: for ``metrics`` not shaped like ``metrics.json`` or ``targets`` not a
            mapping of notebook names to tuples of :class:`Target`.
        ValueError: for run figures in ``_meta`` that are not finite numbers.
    """
    _check_metrics(metrics)
    targets = _check_targets_table(targets)
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
    """Render a run's metrics as Markdown: one run table, then one figure table per notebook.

    Raises:
        TypeError, ValueError: as :func:`check_targets`, and for a ``title`` that is not a
            string.
    """
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {title!r}")
    checks = check_targets(metrics, targets)  # checks metrics and targets, too
    meta = metrics.get("_meta", {})
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


def _as_path(name: str, value) -> Path:
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip()):
        text = os.fspath(value)
        if isinstance(text, str) and "\0" not in text:
            return Path(text)
    raise ValueError(f"{name} must be a non-empty path (str or os.PathLike), got {value!r}")


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
        ValueError: when ``metrics_path`` is not a path or not a ``metrics.json`` (invalid
            JSON, or not shaped like one), ``out_dir`` is not a path or cannot be created,
            ``date`` is not a ``YYYY-MM-DD`` date, or ``gpu`` is not a non-empty string;
            all before anything is written.
    """
    metrics_path = _as_path("metrics_path", metrics_path)
    out_dir = _as_path("out_dir", out_dir)
    if date is None:
        date = datetime.date.today().isoformat()
    elif not isinstance(date, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", date):
        raise ValueError(f"date must be YYYY-MM-DD, got {date!r}")
    else:
        try:
            datetime.date.fromisoformat(date)
        except ValueError:
            raise ValueError(f"date must be a real YYYY-MM-DD date, got {date!r}") from None
    if gpu is not None and (not isinstance(gpu, str) or not gpu.strip()):
        raise ValueError(f"gpu must be a non-empty device name or None, got {gpu!r}")
    if not metrics_path.is_file():
        raise FileNotFoundError(
            f"no metrics file at {str(metrics_path)!r}; run the notebooks first"
        )
    try:
        metrics = json.loads(metrics_path.read_text())
        _check_metrics(metrics, "metrics_path")
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as err:
        raise ValueError(
            f"metrics_path {str(metrics_path)!r} is not a notebook run's metrics.json: {err}"
        ) from None
    if gpu is None:
        meta = metrics.get("_meta", {}).values()
        names = [m.get("gpu") for m in meta if m.get("gpu")] or [m.get("device") for m in meta]
        gpu = next((str(n) for n in names if n), "unknown")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"out_dir {str(out_dir)!r} cannot be created: {err.strerror or err}"
        ) from None
    stem = f"{date}-{_slug(gpu)}"
    report = out_dir / f"{stem}.md"
    devices = {m.get("device") for m in metrics.get("_meta", {}).values()}
    kind = "GPU run" if "cuda" in devices else "Run"
    report.write_text(render_report(metrics, title=f"{kind}, {date}, {gpu}"))
    (out_dir / f"{stem}-metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return report
