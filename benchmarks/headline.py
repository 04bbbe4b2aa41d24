"""Re-run every headline comparison that needs no GPU, interleaved, and write the table.

``make bench`` runs this. Each comparison runs its sides (nndoctor and each peer, every side in
its own process, the peers in their own virtual environments) in **interleaved rounds**: round
``r`` runs the sides in the order rotated by ``r`` (A, B then B, A ...), so that a load that drifts
during the run hits every side alike. ``cat /proc/loadavg`` is recorded before and after each
round. The table reports, per comparison: the median over the rounds of the per-round ratio,
the range of the rounds, the load, the sizes, and what each tool concluded on the same data
(p-values, drifted columns, findings). It is written to ``benchmarks/headline.md`` with the
raw rounds in ``benchmarks/headline.json``; the summary table is also written into
``benchmarks/README.md`` between its ``headline`` markers, and ``scripts/build_readme.py``
copies it into README.md.

Comparisons (``--only`` picks some, comma-separated):

* ``mmd``: ``nndoctor.shift.mmd_test`` vs alibi-detect's ``MMDDrift`` (PyTorch backend),
  2,000 vs 2,000 rows, d = 32, 100 permutations, the same data and bandwidth (a new seed per
  round);
* ``features``: ``nndoctor.shift.feature_test`` (KS per column, Holm at 0.05) vs evidently's
  ``DataDriftPreset`` at its default (normed Wasserstein distance >= 0.1: a different
  question) and at ``method="ks", threshold=0.05`` (the same KS p-values, without a
  multiple-testing correction), 356,000 x 100 per side, 10 columns shifted by 0.05 sd;
* ``monitor``: the step time of ``nndoctor.Monitor`` (default budget) vs wandb.watch-style
  histogram hooks at the worst case (gradients and parameters, every step) and at
  ``wandb.watch``'s default (gradients only, ``log_freq=1000``), vs
  ``torch.autograd.set_detect_anomaly``, each as a ratio to the plain step, 4x256 MLP and a
  small CNN, batch 128, 1 thread (``benchmarks/bench_monitor.py``: the configurations of one
  round are interleaved step-block by step-block in a shuffled order, a new order per round);
* ``cockpit``: the same against Cockpit's "economy" configuration, every step (far slower, so
  fewer steps; in Cockpit's virtual environment).

The peers' virtual environments (``benchmarks/.venv-alibi``, ``.venv-evidently``,
``.venv-cockpit``; git-ignored) are created with the pins in :data:`VENVS` when missing.

Run (from the repository root)::

    make bench                       # everything, 3 rounds (about 30-40 min on 2 busy cores)
    make bench ONLY=monitor          # one comparison
    PYTHONPATH=src python benchmarks/headline.py --rounds 5 --only mmd,features
    PYTHONPATH=src python benchmarks/headline.py --quick   # small sizes, a smoke test (~3 min)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT_MD = HERE / "headline.md"
BENCH_README = HERE / "README.md"
START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def _nndoctor_runtime() -> list[str]:
    """nndoctor's own runtime dependencies (for a peer environment that also runs nndoctor)."""
    with open(ROOT / "pyproject.toml", "rb") as fh:
        deps: list[str] = tomllib.load(fh)["project"]["dependencies"]
    return [d for d in deps if not d.startswith("torch")]


# The peers' pins (their own pins clash with ours: alibi-detect needs numpy < 2), as pip
# install steps, in order. Cockpit's environment also runs nndoctor (the same run times both);
# cockpit 1.0.2 imports pkg_resources, gone from setuptools 70, while torch 2.13 asks for
# setuptools >= 77: the old one goes in last, on its own.
VENVS: dict[str, list[list[str]]] = {
    "alibi": [["torch==2.13.0", "numpy<2", "alibi-detect[torch]==0.13.0"]],
    "evidently": [["evidently==0.7.23", "pandas<3"]],
    "cockpit": [
        ["torch==2.13.0", "torchvision==0.28.*"],
        ["cockpit-for-pytorch==1.0.2", "backpack-for-pytorch", "NNDOCTOR-RUNTIME"],
        ["setuptools<70"],
    ],
}
VERSION_OF = {"alibi": "alibi-detect", "evidently": "evidently", "cockpit": "cockpit-for-pytorch"}


def venv_python(name: str | None) -> Path:
    """The interpreter of peer environment ``name`` (``None``: this one)."""
    if name is None:
        return Path(sys.executable)
    return HERE / f".venv-{name}" / "bin" / "python"


def ensure_venv(name: str) -> Path:
    """Create ``benchmarks/.venv-NAME`` with the pins of :data:`VENVS` when it is missing."""
    python = venv_python(name)
    if python.exists():
        return python
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(python.parent.parent)], check=True)
    for step in VENVS[name]:
        reqs = [
            r for req in step for r in (_nndoctor_runtime() if req == "NNDOCTOR-RUNTIME" else [req])
        ]
        print(f"benchmarks/.venv-{name}: pip install {' '.join(reqs)}", file=sys.stderr, flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *reqs], check=True)
    return python


def package_version(name: str | None, package: str) -> str:
    """``package``'s version in environment ``name`` (empty when it cannot be read)."""
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run(
        [str(venv_python(name)), "-c", code], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def loadavg() -> str:
    """The first three fields of ``/proc/loadavg`` (1, 5, 15 minutes)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


@dataclass(frozen=True)
class Side:
    """One tool's run: a label, its environment (``None``: ours) and the script's arguments."""

    label: str
    venv: str | None
    argv: tuple[str, ...]
    nndoctor: bool = False


@dataclass
class Comparison:
    """Sides run in interleaved rounds; ``parse`` turns a side's JSON lines into a record."""

    name: str
    title: str
    sizes: str
    sides: list[Side]
    # per-round argv additions (e.g. a new seed per round)
    round_args: Callable[[int], tuple[str, ...]] = lambda r: ()
    rounds: list[dict[str, Any]] = field(default_factory=list)


def order_for_round(n_sides: int, r: int) -> list[int]:
    """Side order in round ``r``: rotated by ``r`` (A, B then B, A for two sides)."""
    return [(i + r) % n_sides for i in range(n_sides)]


def run_side(side: Side, extra: Sequence[str]) -> list[dict[str, Any]]:
    """Run one side in its own process; its stdout's JSON lines."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [str(venv_python(side.venv)), *side.argv, *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(
            f"{side.label} failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}"
        )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def run_comparison(
    comp: Comparison,
    n_rounds: int,
    log: Callable[[str], None],
    after_round: Callable[[], None] = lambda: None,
) -> None:
    """Interleaved rounds of ``comp``'s sides; results appended to ``comp.rounds``."""
    for r in range(n_rounds):
        order = order_for_round(len(comp.sides), r)
        record: dict[str, Any] = {"round": r, "order": [comp.sides[i].label for i in order]}
        record["load_before"] = loadavg()
        for i in order:
            side = comp.sides[i]
            log(f"{comp.name} round {r + 1}/{n_rounds}: {side.label}")
            record[side.label] = run_side(side, comp.round_args(r))
        record["load_after"] = loadavg()
        comp.rounds.append(record)
        log(f"{comp.name} round {r + 1}: load {record['load_before']} -> {record['load_after']}")
        after_round()


# ---------------------------------------------------------------- the comparisons


def comparisons(quick: bool, feature_rows: int = 356_000) -> dict[str, Comparison]:
    """The headline comparisons at full or ``quick`` (smoke-test) size (``feature_rows``: the
    rows per side of ``features`` at full size)."""
    two = str(HERE / "bench_two_sample.py")
    mon = str(HERE / "bench_monitor.py")
    n_mmd = "500" if quick else "2000"
    rows, cols = ("20000", "20") if quick else (str(feature_rows), "100")
    feat = ("--rows", rows, "--cols", cols)
    hooks = "baseline,nndoctor,wandb-hist,wandb-default,anomaly"
    mon_hooks = ("--rounds", "2", "--steps", "5") if quick else ("--rounds", "6", "--steps", "20")
    mon_cockpit = ("--rounds", "1", "--steps", "2") if quick else ("--rounds", "4", "--steps", "3")
    mon_common = ("--threads", "1", "--json", "--notes")
    return {
        "mmd": Comparison(
            "mmd",
            "MMD two-sample test vs alibi-detect MMDDrift",
            f"{n_mmd} vs {n_mmd} rows, d = 32, 100 permutations, float32, all cores",
            [
                Side("nndoctor", None, (two, "mmd-ours", "--n", n_mmd, "--reference", "0"), True),
                Side("alibi-detect", "alibi", (two, "mmd-alibi", "--n", n_mmd)),
            ],
            round_args=lambda r: ("--seeds", str(r)),
        ),
        "features": Comparison(
            "features",
            "per-feature drift vs evidently DataDriftPreset",
            f"{int(rows):,} rows x {cols} columns per side, 10 % of the columns shifted by 0.05 sd",
            [
                Side("nndoctor", None, (two, "features-ours", *feat), True),
                Side("evidently default", "evidently", (two, "features-evidently", *feat)),
                Side(
                    "evidently ks 0.05",
                    "evidently",
                    (two, "features-evidently", *feat, "--method", "ks", "--threshold", "0.05"),
                ),
            ],
        ),
        "monitor": Comparison(
            "monitor",
            "Monitor vs wandb.watch-style hooks and set_detect_anomaly (step time / plain step)",
            "4x256 MLP and small CNN, batch 128, 1 thread; per round "
            + " x ".join(mon_hooks[1::2])
            + " steps per configuration",
            [Side("bench_monitor", None, (mon, "--configs", hooks, *mon_hooks, *mon_common))],
            round_args=lambda r: ("--seed", str(r)),
        ),
        "cockpit": Comparison(
            "cockpit",
            "Monitor vs Cockpit economy (step time / plain step)",
            "4x256 MLP and small CNN, batch 128, 1 thread; per round "
            + " x ".join(mon_cockpit[1::2])
            + " steps per configuration",
            [
                Side(
                    "bench_monitor",
                    "cockpit",
                    (
                        mon,
                        "--configs",
                        "baseline,nndoctor,cockpit-economy",
                        *mon_cockpit,
                        *mon_common,
                    ),
                )
            ],
            round_args=lambda r: ("--seed", str(r)),
        ),
    }


# ---------------------------------------------------------------- judging the rounds


def _median_range(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _load_range(rounds: Sequence[dict[str, Any]]) -> str:
    ones = [
        float(r[k].split()[0])
        for r in rounds
        for k in ("load_before", "load_after")
        if r[k] != "n/a"
    ]
    return f"{min(ones):.1f}-{max(ones):.1f}" if ones else "n/a"


def _holm(pvalues: dict[str, float], alpha: float = 0.05) -> list[str]:
    """Columns Holm's step-down procedure rejects at ``alpha``."""
    ranked = sorted(pvalues.items(), key=lambda kv: kv[1])
    m, out = len(ranked), []
    for k, (name, p) in enumerate(ranked):
        if p > alpha / (m - k):
            break
        out.append(name)
    return out


def _columns(names: Sequence[str]) -> str:
    """``['f0', 'f1', 'f2', 'f7']`` -> ``'f0-f2, f7'`` (compact, in numeric order)."""
    if not names:
        return "none"
    try:
        nums = sorted(int(n.lstrip("f")) for n in names)
    except ValueError:
        return ", ".join(sorted(names))
    parts, start, prev = [], nums[0], nums[0]
    for n in [*nums[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"f{start}" if start == prev else f"f{start}-f{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def summarize_timed(comp: Comparison) -> dict[str, Any]:
    """Per-side times, per-round peer/nndoctor ratios and what each side concluded."""
    ours = next(s for s in comp.sides if s.nndoctor)
    seconds = {s.label: [r[s.label][-1]["seconds"] for r in comp.rounds] for s in comp.sides}
    out: dict[str, Any] = {
        "title": comp.title,
        "sizes": comp.sizes,
        "rounds": len(comp.rounds),
        "load": _load_range(comp.rounds),
        "seconds": {k: _median_range(v) for k, v in seconds.items()},
        "ratios": {},
        "concluded": {},
    }
    for s in comp.sides:
        if s is ours:
            continue
        ratios = [p / o for p, o in zip(seconds[s.label], seconds[ours.label], strict=True)]
        out["ratios"][s.label] = {**_median_range(ratios), "per_round": ratios}
    last = comp.rounds[-1]
    if comp.name == "mmd":
        for s in comp.sides:
            pv = [r[s.label][-1]["pvalue"] for r in comp.rounds]
            det = sum(bool(r[s.label][-1]["drift_detected"]) for r in comp.rounds)
            out["concluded"][s.label] = (
                "p = " + ", ".join(f"{p:.2f}" for p in pv) + f" (drift in {det}/{len(pv)} rounds)"
            )
    elif comp.name == "features":
        ours_rec = last[ours.label][-1]
        out["concluded"][ours.label] = (
            f"{len(ours_rec['drifted'])} drifted ({_columns(ours_rec['drifted'])}); "
            f"{ours_rec['test']}"
        )
        for s in comp.sides:
            if s is ours:
                continue
            rec = last[s.label][-1]
            text = f"{rec['n_drifted']} drifted ({_columns(rec['drifted'])}); {rec['test']}"
            if rec["score_is_pvalue"]:
                diff = max(
                    abs(rec["scores"][c] - ours_rec["pvalues"][c]) for c in ours_rec["pvalues"]
                )
                holm = _holm(rec["scores"])
                text += (
                    f"; its p-values with Holm: {len(holm)} drifted ({_columns(holm)}); "
                    f"largest difference to nndoctor's raw p-values {diff:.1g}"
                )
            else:
                shifted = [rec["scores"][c] for c in ours_rec["drifted"]] or [float("nan")]
                text += (
                    f"; its score on nndoctor's drifted columns {min(shifted):.3f}-"
                    f"{max(shifted):.3f}, under its threshold"
                    if max(shifted) < 0.1
                    else f"; its score on nndoctor's drifted columns {min(shifted):.3f}-"
                    f"{max(shifted):.3f}"
                )
            out["concluded"][s.label] = text
    return out


def _fmt_findings(note: dict[str, Any]) -> str:
    f = note.get("findings")
    if isinstance(f, dict):
        return "no findings" if not f else ", ".join(f"{k} x{v}" for k, v in sorted(f.items()))
    text = str(f) if f is not None else ""
    if "histograms_sent" in note:
        text += f", {note['histograms_sent']} histograms in {note['steps']} steps"
    if "quantities" in note:
        text += f", tracks {', '.join(note['quantities'])}"
    return text


def summarize_monitor(comp: Comparison) -> dict[str, Any]:
    """Per model and configuration: the step-time ratio to the plain step over the rounds."""
    out: dict[str, Any] = {
        "title": comp.title,
        "sizes": comp.sizes,
        "rounds": len(comp.rounds),
        "load": _load_range(comp.rounds),
        "ratios": {},
        "ms": {},
        "concluded": {},
    }
    label = comp.sides[0].label
    for r in comp.rounds:
        medians = r[label][0]
        for model, times in medians.items():
            for cfg, t in times.items():
                if cfg == "baseline":
                    continue
                out["ratios"].setdefault(model, {}).setdefault(cfg, []).append(
                    t / times["baseline"]
                )
                out["ms"].setdefault(model, {}).setdefault(cfg, []).append(t * 1e3)
            out["ms"].setdefault(model, {}).setdefault("baseline", []).append(
                times["baseline"] * 1e3
            )
    out["ratios"] = {
        m: {c: {**_median_range(v), "per_round": v} for c, v in cfgs.items()}
        for m, cfgs in out["ratios"].items()
    }
    out["ms"] = {
        m: {c: statistics.median(v) for c, v in cfgs.items()} for m, cfgs in out["ms"].items()
    }
    notes = comp.rounds[-1][label][1]["notes"] if len(comp.rounds[-1][label]) > 1 else {}
    for model, cfgs in notes.items():
        for cfg, note in cfgs.items():
            if cfg != "baseline":
                out["concluded"].setdefault(cfg, {})[model] = _fmt_findings(note)
    return out


def summarize(comp: Comparison, when: str = "") -> dict[str, Any]:
    """The summary of ``comp``'s rounds (plus the loads of every round and when it ran)."""
    out = summarize_monitor(comp) if comp.name in ("monitor", "cockpit") else summarize_timed(comp)
    out["round_loads"] = [
        f"{r['load_before'].split()[0]}->{r['load_after'].split()[0]}" for r in comp.rounds
    ]
    out["when"] = when
    return out


# ---------------------------------------------------------------- rendering


def _rng(d: dict[str, float], fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(d['median'])} ({fmt.format(d['min'])}-{fmt.format(d['max'])})"


CONFIG_LABEL = {
    "nndoctor": "nndoctor Monitor (default budget)",
    "nndoctor-full": "nndoctor Monitor (budget=None)",
    "wandb-hist": "wandb.watch-style, worst case (grads + params, every step)",
    "wandb-default": "wandb.watch default (gradients, log_freq=1000)",
    "anomaly": "set_detect_anomaly(True)",
    "cockpit-economy": "Cockpit economy, every step",
}


def summary_table(summaries: dict[str, dict[str, Any]]) -> str:
    """The short table that benchmarks/README.md and README.md quote."""
    lines = [
        "| comparison | sizes | nndoctor | peer | peer / nndoctor: median (range of rounds) |"
        " rounds, load |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("mmd", "features"):
        if name not in summaries:
            continue
        s = summaries[name]
        ours = next(k for k in s["seconds"] if k == "nndoctor")
        for peer, ratio in s["ratios"].items():
            lines.append(
                f"| {s['title']} | {s['sizes']} | {_rng(s['seconds'][ours], '{:.2f}')} s | "
                f"{peer}: {_rng(s['seconds'][peer], '{:.2f}')} s | "
                f"**{ratio['median']:.1f}x** ({ratio['min']:.1f}-{ratio['max']:.1f}) | "
                f"{s['rounds']}, {s['load']} |"
            )
    for name in ("monitor", "cockpit"):
        if name not in summaries:
            continue
        s = summaries[name]
        for model, cfgs in s["ratios"].items():
            ours = cfgs.get("nndoctor")
            for cfg, ratio in cfgs.items():
                if cfg.startswith("nndoctor") or ours is None:
                    continue
                paired = _median_range(
                    [p / o for p, o in zip(ratio["per_round"], ours["per_round"], strict=True)]
                )
                lines.append(
                    f"| step time / plain step, {model} | {s['sizes']} | "
                    f"x{_rng(ours, '{:.2f}')} | {CONFIG_LABEL.get(cfg, cfg)}: "
                    f"x{_rng(ratio, '{:.2f}')} | "
                    f"**{paired['median']:.2f}x** ({paired['min']:.2f}-{paired['max']:.2f}; "
                    f"peer's step / nndoctor's, per round) | {s['rounds']}, {s['load']} |"
                )
    return "\n".join(lines)


def conclusions_table(summaries: dict[str, dict[str, Any]]) -> str:
    """What each tool concluded on the same data."""
    lines = ["| comparison | tool | concluded |", "|---|---|---|"]
    for name, s in summaries.items():
        for tool, text in s["concluded"].items():
            if isinstance(text, dict):
                text = "; ".join(f"{m}: {t}" for m, t in text.items())
            label = CONFIG_LABEL.get(tool, tool) if name in ("monitor", "cockpit") else tool
            lines.append(f"| {s['title']} | {label} | {text} |")
    return "\n".join(lines)


def rounds_table(summaries: dict[str, dict[str, Any]]) -> str:
    """Every round's ratio and load, so that the range can be checked."""
    lines = ["| comparison | pair | per round | load per round (before -> after) | when |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name, s in summaries.items():
        loads = ", ".join(s["round_loads"])
        if name in ("mmd", "features"):
            for peer, ratio in s["ratios"].items():
                per = ", ".join(f"{x:.1f}" for x in ratio["per_round"])
                lines.append(f"| {name} | {peer} / nndoctor | {per} | {loads} | {s['when']} |")
        else:
            for model, cfgs in s["ratios"].items():
                for cfg, ratio in cfgs.items():
                    per = ", ".join(f"{x:.2f}" for x in ratio["per_round"])
                    lines.append(
                        f"| {name} | {model} {cfg} / plain | {per} | {loads} | {s['when']} |"
                    )
    return "\n".join(lines)


EVIDENTLY_NOTE = [
    "evidently's default tests a different thing from nndoctor: the Wasserstein distance",
    "divided by the reference's standard deviation, drifted at >= 0.1 (an effect-size",
    "threshold, for more than 1,000 rows), where nndoctor runs a KS test per column with",
    "Holm's correction at 0.05. `evidently ks 0.05` runs evidently with the KS test at",
    "0.05 on every column: the same p-values, drifted where p < 0.05 without a",
    "correction (its Holm-corrected decision is computed here from its p-values).",
    "",
]
MONITOR_NOTE = [
    "The monitor rows are step-time ratios to the plain training step measured in the same",
    "process (`benchmarks/bench_monitor.py`; one harness round = one process, the",
    "configurations interleaved in a shuffled order, a new order each round). wandb.watch's",
    'default (`log="gradients", log_freq=1000`) histograms each gradient on every 1,000th',
    "call only, so its median step is the counting hook alone; the worst case",
    '(`log="all", log_freq=1`) histograms every gradient and parameter on every step.',
    "Only nndoctor judges the run (findings); the peers record what a person reads later.",
    "",
]


def render(meta: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> str:
    """The whole headline.md."""
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    return "\n".join(
        [
            "# Headline comparisons (written by `make bench`)",
            "",
            f"Last command: `{meta['command']}`; {meta['started']} to {meta['finished']} UTC"
            " (a comparison run by an earlier command keeps its results: see its time under"
            " Rounds).",
            f"Machine: {meta['machine']}. Versions: {versions}.",
            "Each comparison ran in interleaved rounds (every side in its own process, the order",
            "rotated every round: A, B then B, A ...); ratios are per round, the median and",
            "the range of the rounds are shown; load is the 1-minute load average before and",
            "after each round (the machine is shared: absolute times mean little, ratios more).",
            "No single-best-run numbers.",
            "",
            "## Summary",
            "",
            "<!-- summary:start -->",
            summary_table(summaries),
            "<!-- summary:end -->",
            "",
            "## What each tool concluded on the same data (MMD: every round; others: the last)",
            "",
            conclusions_table(summaries),
            "",
            *(EVIDENTLY_NOTE if "features" in summaries else []),
            *(MONITOR_NOTE if "monitor" in summaries or "cockpit" in summaries else []),
            "## Rounds",
            "",
            rounds_table(summaries),
            "",
        ]
    )


def quote_in_readme(table: str, path: Path = BENCH_README) -> bool:
    """Replace the text between the ``headline`` markers of ``path`` with ``table``."""
    text = path.read_text()
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    return True


def render_again(out_md: Path, comps: dict[str, Comparison], quote: bool) -> None:
    """Summaries and tables again from the rounds recorded in ``out_md``'s JSON (no run)."""
    data = json.loads(out_md.with_suffix(".json").read_text())
    summaries = {}
    for name, comp in comps.items():
        if name not in data["raw"]:
            continue
        comp.rounds = data["raw"][name]["rounds"]
        comp.sizes = data["raw"][name].get("sizes", comp.sizes)  # the sizes it ran at
        summaries[name] = summarize(comp, data["summaries"].get(name, {}).get("when", ""))
    data["summaries"] = summaries
    out_md.write_text(render(data["meta"], summaries))
    out_md.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
    if quote:
        quote_in_readme(summary_table(summaries))
    print(summary_table(summaries))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3 to quote)")
    ap.add_argument("--only", default="mmd,features,monitor,cockpit")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument(
        "--feature-rows",
        type=int,
        default=356_000,
        help="rows per side of the features comparison (the headline size: 356,000)",
    )
    ap.add_argument("--out", type=Path, default=None, help="the .md (JSON beside it)")
    ap.add_argument("--no-readme", action="store_true", help="leave benchmarks/README.md alone")
    ap.add_argument(
        "--render", action="store_true", help="rewrite the tables from the JSON's rounds, no run"
    )
    a = ap.parse_args(argv)
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    comps = comparisons(a.quick, a.feature_rows)
    unknown = sorted(set(only) - set(comps))
    if unknown:
        raise SystemExit(f"unknown comparison(s) {unknown}; choose from {sorted(comps)}")
    out_md = a.out or (HERE / "_work" / "headline-quick.md" if a.quick else OUT_MD)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    if a.render:
        render_again(out_md, comps, quote=not a.quick and not a.no_readme)
        return
    needed = {s.venv for n in only for s in comps[n].sides if s.venv}
    for name in sorted(needed):
        ensure_venv(name)

    def log(msg: str) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
        print(f"[{stamp}] {msg}", file=sys.stderr, flush=True)

    def now() -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")

    started = now()
    summaries: dict[str, dict[str, Any]] = {}
    raw: dict[str, Any] = {}
    versions = {"torch": package_version(None, "torch")}
    previous = out_md.with_suffix(".json")
    if previous.exists() and not a.quick:  # keep the comparisons that are not re-run
        old = json.loads(previous.read_text())
        summaries = {k: v for k, v in old["summaries"].items() if k not in only}
        raw = {k: v for k, v in old["raw"].items() if k not in only}
        versions = {**old["meta"].get("versions", {}), **versions}
    for name in sorted(needed):
        versions[VERSION_OF[name]] = package_version(name, VERSION_OF[name])
    meta = {
        "command": " ".join(["python benchmarks/headline.py", *(argv or sys.argv[1:])]),
        "started": started,
        "finished": "",
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": versions,
        "quick": a.quick,
    }

    def write() -> None:  # after every round, so that a cut-off run keeps what it did
        meta["finished"] = now()
        ordered = {k: summaries[k] for k in comps if k in summaries}
        out_md.write_text(render(meta, ordered))
        out_md.with_suffix(".json").write_text(
            json.dumps({"meta": meta, "summaries": ordered, "raw": raw}, indent=1, default=str)
        )
        log(f"wrote {out_md} and {out_md.with_suffix('.json').name}")
        if not a.quick and not a.no_readme and quote_in_readme(summary_table(ordered)):
            log(f"quoted the summary in {BENCH_README}")

    for name in only:
        t0 = now()
        comp = comps[name]

        def record(comp: Comparison = comp, t0: str = t0) -> None:
            summaries[comp.name] = summarize(comp, f"{t0} to {now()} UTC")
            raw[comp.name] = {
                "sides": [s.__dict__ for s in comp.sides],
                "sizes": comp.sizes,
                "rounds": comp.rounds,
            }
            write()

        run_comparison(comp, a.rounds, log, after_round=record)
    print(summary_table({k: summaries[k] for k in comps if k in summaries}))


if __name__ == "__main__":
    main()
