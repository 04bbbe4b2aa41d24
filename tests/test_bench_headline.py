"""The headline benchmark harness (``benchmarks/headline.py``, ``make bench``) without its peers.

The peers' virtual environments are not built here: the sides are small Python snippets run
by this interpreter, so the interleaving, the load records, the summary (median and range of
the per-round ratios), the conclusions and the table writer run as they do for the real run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("headline", ROOT / "benchmarks" / "headline.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["headline"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


H = _load()


def _snippet(record: dict[str, Any]) -> tuple[str, ...]:
    """A side that prints ``record`` and its own start time as its one JSON line."""
    code = (
        "import json, sys, time; r = json.loads(sys.argv[1]); r['t'] = time.time(); "
        "r['extra'] = sys.argv[2:]; print('noise'); print(json.dumps(r))"
    )
    return ("-c", code, json.dumps(record))


def test_order_alternates_the_first_side() -> None:
    assert [H.order_for_round(2, r) for r in range(4)] == [[0, 1], [1, 0], [0, 1], [1, 0]]
    firsts = [H.order_for_round(3, r)[0] for r in range(3)]
    assert sorted(firsts) == [0, 1, 2]  # every side goes first once in 3 rounds


def test_rounds_interleave_record_load_and_the_ratio_summary() -> None:
    comp = H.Comparison(
        "mmd",
        "MMD test",
        "tiny",
        [
            H.Side(
                "nndoctor",
                None,
                _snippet({"seconds": 0.5, "pvalue": 0.2, "drift_detected": False}),
                True,
            ),
            H.Side(
                "peer", None, _snippet({"seconds": 10.0, "pvalue": 0.01, "drift_detected": True})
            ),
        ],
        round_args=lambda r: ("--seeds", str(r)),
    )
    seen: list[int] = []  # the hook that saves the table after every round
    H.run_comparison(comp, 3, lambda msg: None, after_round=lambda: seen.append(len(comp.rounds)))
    assert seen == [1, 2, 3]
    assert [r["order"] for r in comp.rounds] == [
        ["nndoctor", "peer"],
        ["peer", "nndoctor"],
        ["nndoctor", "peer"],
    ]
    for r, rec in enumerate(comp.rounds):
        first, second = rec["order"]
        assert rec[first][-1]["t"] <= rec[second][-1]["t"]  # really run in that order
        assert rec["nndoctor"][-1]["extra"] == ["--seeds", str(r)]
        assert len(rec["load_before"].split()) == 3
        assert len(rec["load_after"].split()) == 3
    s = H.summarize(comp, "then")
    assert s["ratios"]["peer"]["median"] == pytest.approx(20.0)
    assert s["ratios"]["peer"]["per_round"] == pytest.approx([20.0] * 3)
    assert s["concluded"]["nndoctor"] == "p = 0.20, 0.20, 0.20 (drift in 0/3 rounds)"
    assert s["concluded"]["peer"] == "p = 0.01, 0.01, 0.01 (drift in 3/3 rounds)"
    assert len(s["round_loads"]) == 3


def test_a_failing_side_stops_the_run_with_its_error() -> None:
    side = H.Side("broken", None, ("-c", "import sys; sys.exit('no such peer')"))
    with pytest.raises(RuntimeError, match="no such peer"):
        H.run_side(side, ())


def _features_round(ours_s: float, peer_s: float, ks_s: float) -> dict[str, Any]:
    cols = [f"f{j}" for j in range(6)]
    pvalues = {c: (1e-6 if c in ("f0", "f1") else 0.03 if c == "f4" else 0.5) for c in cols}
    ours = {
        "seconds": ours_s,
        "drifted": ["f0", "f1"],
        "pvalues": pvalues,
        "test": "ks, holm at alpha 0.05",
    }
    default = {
        "seconds": peer_s,
        "n_drifted": 0,
        "drifted": [],
        "scores": dict.fromkeys(cols, 0.05),
        "score_is_pvalue": False,
        "test": "Wasserstein distance (normed) at 0.1 (a distance)",
    }
    ks = {
        "seconds": ks_s,
        "n_drifted": 3,
        "drifted": ["f0", "f1", "f4"],
        "scores": pvalues,
        "score_is_pvalue": True,
        "test": "ks at 0.05",
    }
    return {
        "order": [],
        "load_before": "1.0 1.0 1.0",
        "load_after": "3.5 2.0 1.0",
        "nndoctor": [ours],
        "evidently default": [default],
        "evidently ks 0.05": [ks],
    }


def test_features_summary_median_range_and_what_each_concluded() -> None:
    comp = H.comparisons(quick=True)["features"]
    comp.rounds = [_features_round(1.0, 20.0, 10.0), _features_round(2.0, 20.0, 30.0),
                   _features_round(1.0, 41.0, 12.0)]  # fmt: skip
    s = H.summarize(comp)
    r = s["ratios"]["evidently default"]
    assert (r["median"], r["min"], r["max"]) == pytest.approx((20.0, 10.0, 41.0))
    assert s["ratios"]["evidently ks 0.05"]["median"] == pytest.approx(12.0)
    assert s["load"] == "1.0-3.5"
    assert s["concluded"]["nndoctor"].startswith("2 drifted (f0-f1)")
    default = s["concluded"]["evidently default"]
    assert default.startswith("0 drifted (none)")
    assert "under its threshold" in default
    ks = s["concluded"]["evidently ks 0.05"]
    assert ks.startswith("3 drifted (f0-f1, f4)")
    # Holm on evidently's own p-values gives nndoctor's answer (f4's 0.03 is not significant)
    assert "with Holm: 2 drifted (f0-f1)" in ks
    assert "largest difference to nndoctor's raw p-values 0" in ks


def test_holm_and_column_ranges() -> None:
    # Holm at 0.05 over 4: 0.01 <= 0.0125, 0.015 <= 0.0167, 0.03 > 0.025 stops (and 0.04,
    # under 0.05 on its own, is not rejected after the stop)
    assert H._holm({"a": 0.01, "b": 0.015, "c": 0.03, "d": 0.04}) == ["a", "b"]
    assert H._holm({"a": 0.01, "b": 0.02, "c": 0.03, "d": 0.04}) == ["a"]
    assert H._holm({"a": 0.2}) == []
    assert H._columns(["f3", "f0", "f1", "f2", "f7", "f9", "f8"]) == "f0-f3, f7-f9"
    assert H._columns([]) == "none"


def _monitor_round(scale: float) -> dict[str, Any]:
    medians = {"mlp": {"baseline": 0.010, "nndoctor": 0.011 * scale, "wandb-hist": 0.023}}
    notes = {
        "mlp": {
            "baseline": {"steps": 5},
            "nndoctor": {"findings": {"dead_relu (warning)": 2}, "steps": 5},
            "wandb-hist": {"histograms_sent": 50, "steps": 5, "findings": "none (plots only)"},
        }
    }
    return {"order": [], "load_before": "2.0 1 1", "load_after": "2.5 1 1",
            "bench_monitor": [medians, {"notes": notes}]}  # fmt: skip


def test_monitor_summary_and_the_written_tables(tmp_path: Path) -> None:
    comp = H.comparisons(quick=True)["monitor"]
    comp.rounds = [_monitor_round(1.0), _monitor_round(1.2), _monitor_round(1.1)]
    s = H.summarize(comp)
    assert s["ratios"]["mlp"]["nndoctor"]["median"] == pytest.approx(1.21)
    assert s["ratios"]["mlp"]["nndoctor"]["min"] == pytest.approx(1.1)
    assert s["ratios"]["mlp"]["wandb-hist"]["median"] == pytest.approx(2.3)
    assert s["concluded"]["nndoctor"]["mlp"] == "dead_relu (warning) x2"
    assert "50 histograms in 5 steps" in s["concluded"]["wandb-hist"]["mlp"]
    table = H.summary_table({"monitor": s})
    assert "x1.21 (1.10-1.32)" in table
    assert "x2.30 (2.30-2.30)" in table
    # per round 2.3 / 1.1, 2.3 / 1.32, 2.3 / 1.21: the median and range of the paired ratios
    assert "**1.90x** (1.74-2.09; peer's step / nndoctor's, per round)" in table
    meta = {"command": "c", "started": "a", "finished": "b", "machine": "m",
            "versions": {"torch": "2"}}  # fmt: skip
    text = H.render(meta, {"monitor": s})
    assert "<!-- summary:start -->\n" + table + "\n<!-- summary:end -->" in text
    assert "2.0->2.5, 2.0->2.5, 2.0->2.5" in text  # the load of every round

    readme = tmp_path / "README.md"
    readme.write_text(f"# B\n\nbefore\n{H.START}\nold numbers\n{H.END}\nafter\n")
    assert H.quote_in_readme(table, readme)
    new = readme.read_text()
    assert "old numbers" not in new
    assert new.startswith("# B\n\nbefore\n")
    assert new.endswith("after\n")
    assert f"{H.START}\n{table}\n{H.END}" in new
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not H.quote_in_readme(table, plain)
    assert plain.read_text() == "no markers\n"


def test_render_again_rebuilds_the_tables_from_the_recorded_rounds(tmp_path: Path) -> None:
    comps = H.comparisons(quick=True)
    out = tmp_path / "h.md"
    rounds = [_monitor_round(1.0), _monitor_round(1.2)]
    raw = {"monitor": {"sides": [], "sizes": "the sizes it ran at", "rounds": rounds}}
    meta = {"command": "c", "started": "a", "finished": "b", "machine": "m", "versions": {}}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "summaries": {}, "raw": raw}))
    H.render_again(out, comps, quote=False)
    text = out.read_text()
    assert "x1.21 (1.10-1.32)" in text  # nndoctor's median and range over the two rounds
    assert "the sizes it ran at" in text  # not the sizes of today's defaults
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["summaries"]["monitor"]["ratios"]["mlp"]["wandb-hist"]["median"] == 2.3


def test_unknown_comparison_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown comparison"):
        H.main(["--only", "mmd,gpu"])


def test_every_peer_environment_has_pins_and_a_version_to_report() -> None:
    comps = H.comparisons(quick=False)
    peers = {s.venv for c in comps.values() for s in c.sides if s.venv}
    assert peers == set(H.VENVS) == set(H.VERSION_OF)
    # the headline sizes
    assert "2000 vs 2000 rows, d = 32, 100 permutations" in comps["mmd"].sizes
    assert "356,000 rows x 100 columns" in comps["features"].sizes
    assert json.dumps(H.VENVS)  # plain data
    assert "89,000 rows x 100 columns" in H.comparisons(False, 89_000)["features"].sizes
    assert "--rows" in (side := H.comparisons(False, 89_000)["features"].sides[1]).argv
    assert side.argv[side.argv.index("--rows") + 1] == "89000"
