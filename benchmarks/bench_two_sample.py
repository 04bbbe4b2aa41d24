"""Two-sample tests: nndoctor against alibi-detect (MMD) and evidently (per-feature drift).

The peers live in their own virtual environments (their pins clash with ours); this script runs
each part in the interpreter that has the library and prints one JSON line per measurement.

Set-up (once)::

    python3 -m venv benchmarks/.venv-alibi
    benchmarks/.venv-alibi/bin/pip install torch==2.13.0 "numpy<2" "alibi-detect[torch]"
    python3 -m venv benchmarks/.venv-evidently
    benchmarks/.venv-evidently/bin/pip install evidently

Run (from the repository root)::

    PYTHONPATH=$PWD/src /work/main/.venv/bin/python benchmarks/bench_two_sample.py all
    # or one part: mmd-alibi | mmd-ours | mmd-large | features-ours | features-evidently
    #              | features-missing

``features-*`` take ``--rows`` (default 356,000 per side) and ``--cols`` (default 100);
``features-evidently`` takes ``--method`` and ``--threshold`` (e.g. ``--method ks --threshold
0.05``: the test nndoctor runs, without its multiple-testing correction); ``mmd-ours`` and
``mmd-alibi`` take ``--n`` (rows per side, default 2,000), ``mmd-ours`` ``--reference`` (the
permutations of its untimed reference p-value, default 10,000; 0: none). Every part prints
what the tool concluded (p-values, drifted columns) beside its time.
``benchmarks/headline.py`` (``make bench``) runs the headline comparisons interleaved.
``features-missing`` times ``feature_test`` on 10,000 x 50 per side with and without 5% missing
values (MCAR) and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ALIBI_PY = HERE / ".venv-alibi" / "bin" / "python"
EVIDENTLY_PY = HERE / ".venv-evidently" / "bin" / "python"
OURS_PY = Path(sys.executable)

N_MMD, D_MMD, B_MMD = 2000, 32, 100
SHIFT = 0.015  # mean shift of every coordinate in the MMD benchmark (moderate p-values)


def _mmd_data(seed: int, n: int = N_MMD) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D_MMD)).astype(np.float32)
    y = (rng.normal(size=(n, D_MMD)) + SHIFT).astype(np.float32)
    return x, y


def _bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    z = np.vstack((x, y))[:1000].astype(np.float64)
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    return float(np.median(d[np.triu_indices(len(z), 1)]))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def part_mmd_alibi(seeds: list[int], n: int = N_MMD) -> None:
    import torch
    from alibi_detect.cd import MMDDrift
    from alibi_detect.utils.pytorch.kernels import GaussianRBF

    torch.set_num_threads(os.cpu_count() or 1)
    # warm-up, as for nndoctor below: first-call costs are not part of the comparison
    x, y = _mmd_data(0)
    MMDDrift(x[:100], backend="pytorch", n_permutations=10, kernel=GaussianRBF,
             sigma=np.array([1.0], dtype=np.float32), device="cpu",
             configure_kernel_from_x_ref=False).predict(y[:100])  # fmt: skip
    for seed in seeds:
        x, y = _mmd_data(seed, n)
        bw = _bandwidth(x, y)
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        cd = MMDDrift(
            x,
            backend="pytorch",
            p_val=0.05,
            n_permutations=B_MMD,
            kernel=GaussianRBF,
            sigma=np.array([bw], dtype=np.float32),
            device="cpu",
            configure_kernel_from_x_ref=False,
        )
        pred = cd.predict(y)
        dt = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "part": "mmd-alibi",
                    "seed": seed,
                    "n_per_side": n,
                    "d": D_MMD,
                    "permutations": B_MMD,
                    "seconds": dt,
                    "pvalue": float(pred["data"]["p_val"]),
                    "drift_detected": bool(pred["data"]["is_drift"]),
                    "statistic": float(pred["data"]["distance"]),
                    "bandwidth": bw,
                }
            )
        )


def part_mmd_ours(seeds: list[int], n: int = N_MMD, reference: int = 10_000) -> None:
    """``mmd_test`` timed at ``B_MMD`` permutations; ``reference`` > 0 also computes (untimed)
    the p-value with that many permutations, for the Monte-Carlo error of the timed one."""
    import torch

    from nndoctor.shift import mmd_test

    torch.set_num_threads(os.cpu_count() or 1)
    x, y = _mmd_data(0)
    mmd_test(x[:100], y[:100], n_permutations=10, random_state=0)  # warm-up
    for seed in seeds:
        x, y = _mmd_data(seed, n)
        bw = _bandwidth(x, y)
        t0 = time.perf_counter()
        res = mmd_test(x, y, bandwidth=bw, n_permutations=B_MMD, random_state=seed)
        dt = time.perf_counter() - t0
        ref = None
        if reference > 0:
            ref = mmd_test(x, y, bandwidth=bw, n_permutations=reference, random_state=seed)
        print(
            json.dumps(
                {
                    "part": "mmd-ours",
                    "seed": seed,
                    "n_per_side": n,
                    "d": D_MMD,
                    "permutations": B_MMD,
                    "seconds": dt,
                    "pvalue": res.pvalue,
                    "drift_detected": bool(res.drift_detected),
                    "reference_permutations": reference,
                    "pvalue_reference": None if ref is None else ref.pvalue,
                    "statistic": res.statistic,
                    "bandwidth": bw,
                }
            )
        )


def part_mmd_large(which: str) -> None:
    import torch

    from nndoctor.shift import mmd_test

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    if which == "20k":
        n, d, B = 20_000, 32, 100
        x = rng.normal(size=(n, d))
        y = rng.normal(size=(n, d))
        y[:, 0] += 0.05
        t0 = time.perf_counter()
        res = mmd_test(x, y, n_permutations=B, random_state=0)
    else:
        n, d, B = 1_000_000, 32, 0
        x = rng.normal(size=(n, d)).astype(np.float32)
        y = rng.normal(size=(n, d)).astype(np.float32)
        y[:, 0] += 0.2
        t0 = time.perf_counter()
        res = mmd_test(x, y, random_state=0)
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "part": f"mmd-{which}",
                "n_per_side": n,
                "d": d,
                "permutations": B,
                "method": res.method,
                "seconds": dt,
                "pvalue": res.pvalue,
                "statistic": res.statistic,
                "peak_rss_mb": _peak_mb(),
            }
        )
    )


def _table(rows: int, cols: int, seed: int, shifted: bool) -> object:
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, cols)).astype(np.float64)
    if shifted:
        data[:, : cols // 10] += 0.05  # a small shift in 10% of the columns
    return pd.DataFrame(data, columns=[f"f{j}" for j in range(cols)])


def part_features_ours(rows: int, cols: int) -> None:
    from nndoctor.shift import feature_test

    ref, cur = _table(rows, cols, 1, False), _table(rows, cols, 2, True)
    t0 = time.perf_counter()
    res = feature_test(ref, cur, random_state=0)
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "part": "features-ours",
                "rows": rows,
                "cols": cols,
                "seconds": dt,
                "n_drifted": res.n_drifted,
                "peak_rss_mb": _peak_mb(),
                "test": f"{res.method}, {res.correction} at alpha {res.alpha}",
                "drifted": [f.name for f in res.features if f.drifted],
                "pvalues": {f.name: f.pvalue for f in res.features},
                "adjusted_pvalues": {f.name: f.adjusted_pvalue for f in res.features},
                "wasserstein_std": {f.name: f.effects["wasserstein_std"] for f in res.features},
            }
        )
    )


def part_features_missing(repeats: int = 5) -> None:
    """``feature_test`` on 10,000 x 50 per side: clean, 5% MCAR missing, and clean with the
    target cut to 9,500 rows (unequal sizes, as missing values make them: scipy's exact KS
    p-value, used up to 10,000 rows, costs O(m n) when m != n and O(n) when m = n)."""
    from nndoctor.shift import feature_test

    rows, cols = 10_000, 50
    ref, cur = _table(rows, cols, 1, False), _table(rows, cols, 2, True)
    rng = np.random.default_rng(3)
    ref_na, cur_na = ref.copy(), cur.copy()  # type: ignore[attr-defined]
    ref_na[rng.random(ref_na.shape) < 0.05] = np.nan
    cur_na[rng.random(cur_na.shape) < 0.05] = np.nan
    cases = {
        "clean": (ref, cur),
        "5% missing": (ref_na, cur_na),
        "clean, 10000 vs 9500 rows": (ref, cur.iloc[:9500]),  # type: ignore[attr-defined]
    }
    best = dict.fromkeys(cases, float("inf"))
    drifted: dict[str, int] = {}
    for _ in range(repeats):  # interleaved, so that a busy machine slows every case alike
        for name, (x, y) in cases.items():
            t0 = time.perf_counter()
            res = feature_test(x, y, random_state=0)
            best[name] = min(best[name], time.perf_counter() - t0)
            drifted[name] = res.n_drifted
    for name in cases:
        print(json.dumps({"part": "features-missing", "data": name, "cols": cols,
                          "best_of": repeats, "seconds": round(best[name], 3),
                          "n_drifted": drifted[name],
                          "ratio_to_clean": round(best[name] / best["clean"], 2)}))  # fmt: skip


def part_features_evidently(
    rows: int, cols: int, method: str | None = None, threshold: float | None = None
) -> None:
    """evidently's ``DataDriftPreset``: its default (``method=None``: normed Wasserstein distance
    at 0.1 for numeric columns over 1,000 rows) or one stattest for every column, e.g.
    ``method="ks", threshold=0.05`` (per-column KS p-values, drifted where p < 0.05, no
    multiple-testing correction)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = _table(rows, cols, 1, False), _table(rows, cols, 2, True)
    kwargs: dict[str, object] = {}
    if method is not None:
        kwargs["method"] = method
    if threshold is not None:
        kwargs["threshold"] = threshold
    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset(**kwargs)]).run(cur, ref)  # type: ignore[arg-type]
    out = snapshot.dict()
    dt = time.perf_counter() - t0
    scores: dict[str, float] = {}
    count, stattest, level = None, None, None
    for m in out.get("metrics", []):
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("DriftedColumnsCount"):
            count = int(m["value"]["count"])
        elif cfg.get("type", "").endswith("ValueDrift"):
            scores[cfg["column"]] = float(m["value"])
            stattest, level = cfg.get("method"), cfg.get("threshold")
    is_pvalue = stattest is not None and "distance" not in stattest.lower()
    drifted = [
        c
        for c, v in scores.items()
        if level is not None and (v < level if is_pvalue else v >= level)
    ]
    print(
        json.dumps(
            {
                "part": "features-evidently",
                "rows": rows,
                "cols": cols,
                "seconds": dt,
                "metrics": len(out.get("metrics", [])),
                "peak_rss_mb": _peak_mb(),
                "test": f"{stattest} at {level}" + ("" if is_pvalue else " (a distance)"),
                "score_is_pvalue": is_pvalue,
                "n_drifted": count,
                "drifted": drifted,
                "scores": scores,
            }
        )
    )


def _run(python: Path, *args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([str(python), __file__, *args], check=True, env=env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("part")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--rows", type=int, default=356_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--n", type=int, default=N_MMD, help="rows per side of mmd-ours/-alibi")
    ap.add_argument("--reference", type=int, default=10_000, help="mmd-ours reference B")
    ap.add_argument("--method", default=None, help="features-evidently: stattest")
    ap.add_argument("--threshold", type=float, default=None, help="features-evidently")
    a = ap.parse_args()
    if a.part == "mmd-alibi":
        part_mmd_alibi(a.seeds, a.n)
    elif a.part == "mmd-ours":
        part_mmd_ours(a.seeds, a.n, a.reference)
    elif a.part in ("mmd-20k", "mmd-1m"):
        part_mmd_large(a.part.split("-")[1])
    elif a.part == "features-ours":
        part_features_ours(a.rows, a.cols)
    elif a.part == "features-evidently":
        part_features_evidently(a.rows, a.cols, a.method, a.threshold)
    elif a.part == "features-missing":
        part_features_missing()
    elif a.part == "all":
        seeds = [str(s) for s in a.seeds]
        _run(OURS_PY, "mmd-ours", "--seeds", *seeds)
        _run(ALIBI_PY, "mmd-alibi", "--seeds", *seeds)
        _run(OURS_PY, "mmd-20k")
        _run(OURS_PY, "mmd-1m")
        for rows in (35_600, a.rows):
            _run(OURS_PY, "features-ours", "--rows", str(rows), "--cols", str(a.cols))
        _run(EVIDENTLY_PY, "features-evidently", "--rows", "35600", "--cols", str(a.cols))
        _run(OURS_PY, "features-missing")
    else:
        raise SystemExit(f"unknown part {a.part!r}")


if __name__ == "__main__":
    main()
