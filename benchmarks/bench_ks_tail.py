"""The KS p-value's tail: ``kolmogorov_sf`` against ``scipy.stats.kstwo.sf``, and what it buys.

Run:  PYTHONPATH=src python benchmarks/bench_ks_tail.py [--rounds 5] [--rows 356000 --cols 100]

Two parts, interleaved round by round (A, B, A, B ...), medians with their range:

* ``tail``: one p-value at sizes ``n`` (the KS test's effective size ``m n / (m + n)``) and
  distances where scipy sums the one-sided Smirnov series term by term (``n d^2 >= 2.2``), by
  scipy and by :func:`nndoctor.shift._univariate.kolmogorov_sf`, with their largest relative
  difference;
* ``features``: ``feature_test`` end to end on the headline's table (``bench_two_sample.py``:
  ``--rows`` x ``--cols`` float64 per side, 10 % of the columns shifted by 0.05 sd), each run
  in its own process, once with ``kolmogorov_sf`` and once with scipy's ``kstwo.sf`` put back
  in its place (the rest of the code the same), with the p-values of both compared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _part_tail(rounds: int) -> None:
    from scipy import stats

    from nndoctor.shift._univariate import kolmogorov_sf

    cases = [(n, p) for n in (50_000, 178_000, 1_000_000) for p in (1e-3, 1e-8, 1e-30)]
    points = [(float(stats.kstwobign.isf(p)) / math.sqrt(n), n) for n, p in cases]
    worst = max(abs(kolmogorov_sf(d, n) / float(stats.kstwo.sf(d, n)) - 1) for d, n in points)
    sides = {
        "scipy": lambda d, n: float(stats.kstwo.sf(d, n)),
        "nndoctor": kolmogorov_sf,
    }
    times: dict[str, list[float]] = {"scipy": [], "nndoctor": []}
    for r in range(rounds):
        for side in ["scipy", "nndoctor"] if r % 2 == 0 else ["nndoctor", "scipy"]:
            fn = sides[side]
            t0 = time.perf_counter()
            for d, n in points:
                fn(d, n)
            times[side].append(time.perf_counter() - t0)
    ours, theirs = times["nndoctor"], times["scipy"]
    print(
        json.dumps(
            {
                "part": "tail",
                "cases": len(cases),
                "scipy_s": statistics.median(theirs),
                "scipy_range": [min(theirs), max(theirs)],
                "nndoctor_s": statistics.median(ours),
                "nndoctor_range": [min(ours), max(ours)],
                "ratio": statistics.median(theirs) / statistics.median(ours),
                "max_relative_difference": worst,
            }
        )
    )


def _part_features(rows: int, cols: int, use_scipy: bool) -> None:
    from scipy import stats

    import nndoctor.shift._univariate as uni
    from bench_two_sample import _table  # the headline's table
    from nndoctor.shift import feature_test

    if use_scipy:
        uni.kolmogorov_sf = lambda d, n: float(stats.kstwo.sf(d, n))  # type: ignore[assignment]
    ref, cur = _table(rows, cols, 1, False), _table(rows, cols, 2, True)
    t0 = time.perf_counter()
    res = feature_test(ref, cur, random_state=0)
    dt = time.perf_counter() - t0
    pvalues = [f.pvalue for f in res.features]
    print(json.dumps({"seconds": dt, "n_drifted": res.n_drifted, "pvalues": pvalues}))


def _features(rounds: int, rows: int, cols: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    out: dict[str, list[dict[str, Any]]] = {"scipy": [], "nndoctor": []}
    for r in range(rounds):
        order = ["scipy", "nndoctor"] if r % 2 == 0 else ["nndoctor", "scipy"]
        for side in order:
            cmd = [sys.executable, __file__, "--child", side, "--rows", str(rows)]
            cmd += ["--cols", str(cols)]
            line = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            out[side].append(json.loads(line))
    a = [o["seconds"] for o in out["scipy"]]
    b = [o["seconds"] for o in out["nndoctor"]]
    pa, pb = np.array(out["scipy"][0]["pvalues"]), np.array(out["nndoctor"][0]["pvalues"])
    rel = float(np.max(np.abs(pa - pb) / np.maximum(pa, 1e-300)))
    print(
        json.dumps(
            {
                "part": "features",
                "rows": rows,
                "cols": cols,
                "scipy_s": statistics.median(a),
                "scipy_range": [min(a), max(a)],
                "nndoctor_s": statistics.median(b),
                "nndoctor_range": [min(b), max(b)],
                "ratio": statistics.median(a) / statistics.median(b),
                "n_drifted": [out["scipy"][0]["n_drifted"], out["nndoctor"][0]["n_drifted"]],
                "max_relative_pvalue_difference": rel,
                "load": os.getloadavg(),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=356_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--only", default="tail,features")
    ap.add_argument("--child", choices=("scipy", "nndoctor"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _part_features(args.rows, args.cols, args.child == "scipy")
        return
    print(json.dumps({"python": sys.version.split()[0], "load": os.getloadavg()}))
    if "tail" in args.only:
        _part_tail(args.rounds)
    if "features" in args.only:
        _features(args.rounds, args.rows, args.cols)


if __name__ == "__main__":
    main()
