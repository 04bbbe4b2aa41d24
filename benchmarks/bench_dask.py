"""The per-feature tests on Dask beside the in-memory path on the same Parquet data (issue 17).

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_dask.py [--rows 2000000]
      [--files 8] [--scheduler ADDRESS]

Writes two Parquet datasets under ``benchmarks/_work/dask/`` (``--files`` files each; 8 numeric
columns, source N(0, 1) and target with a 0.02 sd mean shift on the first, exponential,
uniform and integer columns, 5% missing values in one, and 2 categorical columns, one of them
shifted), then runs each path in its own process, so that each process's peak memory is its
own: ``in-memory`` reads both tables with pandas and calls ``feature_test``; ``dask`` calls it on
``dask.dataframe.read_parquet`` (Dask's default local threads, or ``--scheduler``). Reported:
wall time of each (reading included), the ratio, peak resident memory of each process, whether
the χ² statistics, p-values and missing counts are equal to the last digit, and for the KS
columns ``|D_dask - D_exact|`` against the stated ``statistic_error``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

WORK = Path(__file__).resolve().parent / "_work" / "dask"


def _write(rows: int, files: int) -> None:
    """The two Parquet datasets (skipped when they exist at this size)."""
    stamp = WORK / f"done-{rows}-{files}"
    if stamp.exists():
        return
    rng = np.random.default_rng(0)
    for name, shift in (("source", 0.0), ("target", 1.0)):
        folder = WORK / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.parquet"):
            old.unlink()
        for i, size in enumerate(np.diff(np.linspace(0, rows, files + 1).astype(int))):
            frame = pd.DataFrame(
                {
                    "n0": rng.normal(0.02 * shift, 1.0, size),
                    "n1": rng.normal(0.0, 1.0, size),
                    "n2": rng.exponential(1.0, size),
                    "n3": rng.uniform(0.0, 1.0, size),
                    "n4": rng.integers(0, 50, size).astype(np.float64),
                    "n5": rng.normal(5.0, 2.0, size),
                    "n6": rng.lognormal(0.0, 1.0, size),
                    "n7": rng.normal(0.0, 1.0, size),
                    "c0": rng.choice(["a", "b", "c", "d"], size),
                    "c1": rng.choice(
                        ["x", "y", "z"], size, p=[0.5, 0.3, 0.2] if not shift else [0.49, 0.3, 0.21]
                    ),
                }
            )
            frame.loc[rng.random(size) < 0.05, "n7"] = np.nan
            frame.to_parquet(folder / f"part{i:03d}.parquet")
    stamp.touch()


def _run(mode: str, scheduler: str | None) -> dict[str, object]:
    """One path, timed from reading the files to the result (runs in its own process)."""
    from nndoctor.shift import feature_test

    start = time.perf_counter()
    if mode == "in-memory":
        src = pd.read_parquet(WORK / "source")
        tgt = pd.read_parquet(WORK / "target")
        res = feature_test(src, tgt, random_state=0)
    else:
        import dask.dataframe as dd

        src = dd.read_parquet(str(WORK / "source"))
        tgt = dd.read_parquet(str(WORK / "target"))
        if scheduler:
            from distributed import Client

            with Client(scheduler):
                res = feature_test(src, tgt, random_state=0)
        else:
            res = feature_test(src, tgt, random_state=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "result": res.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--mode", choices=["in-memory", "dask"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(_run(args.mode, args.scheduler)))
        return
    t0 = time.perf_counter()
    _write(args.rows, args.files)
    print(f"wrote {args.rows:,} rows x 10 columns per table in {args.files} files "
          f"({time.perf_counter() - t0:.1f} s); load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    out = {}
    for mode in ("in-memory", "dask"):
        cmd = [sys.executable, __file__, "--mode", mode]
        if args.scheduler:
            cmd += ["--scheduler", args.scheduler]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    mem, dsk = out["in-memory"], out["dask"]
    print(f"{'path':<10} {'seconds':>8} {'peak MiB':>9}")
    for mode in ("in-memory", "dask"):
        print(f"{mode:<10} {out[mode]['seconds']:>8.1f} {out[mode]['peak_mib']:>9.0f}")
    print(f"time ratio dask / in-memory: {dsk['seconds'] / mem['seconds']:.2f}")
    print(f"{'column':<7} {'test':<5} {'exact':>10} {'dask':>10} {'|diff|':>9} {'bound':>9} "
          f"{'p exact':>9} {'p dask':>9} equal/within")  # fmt: skip
    for e, d in zip(mem["result"]["features"], dsk["result"]["features"], strict=True):
        diff = abs(e["statistic"] - d["statistic"])
        if e["test"] == "chi2":
            ok = e["statistic"] == d["statistic"] and e["pvalue"] == d["pvalue"]
        else:
            ok = diff <= d["statistic_error"]
        ok = ok and e["missingness"] == d["missingness"]
        print(f"{e['name']:<7} {e['test']:<5} {e['statistic']:>10.5g} {d['statistic']:>10.5g} "
              f"{diff:>9.2g} {d['statistic_error']:>9.2g} {e['pvalue']:>9.2g} "
              f"{d['pvalue']:>9.2g} {ok}")  # fmt: skip
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
