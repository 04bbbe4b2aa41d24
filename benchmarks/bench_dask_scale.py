"""Larger than the workers' memory, and Dask beside in-memory at a size that fits (issue 17).

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_dask_scale.py --part large
      [--gib 6] [--workers 2] [--worker-mib 768] [--keep]
      OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_dask_scale.py --part fit
      [--rows 2000000]

Data (written under ``benchmarks/_work/scale/``, git-ignored, deleted after the run unless
``--keep``): a label-shift world with 3 classes. Source prior (0.5, 0.3, 0.2), target prior
(0.3, 0.3, 0.4); 20 float64 features, ``x | y ~ N(mu_y, I)`` with ``mu_y`` non-zero on the first
four; ``c0`` a categorical column independent of ``y``, ``c1`` one that depends on it; the label
``y``. The "model" is the Bayes classifier of the source (closed-form logits), a NumPy callable
that Dask ships to the workers. Files are written uncompressed (random doubles do not compress),
so the bytes on disk are the bytes read.

``--part large``: about ``--gib`` GiB of Parquet (source and target together) on a
``distributed.LocalCluster`` of ``--workers`` processes limited to ``--worker-mib`` MiB each
(the data must be at least 4x their total); runs the per-feature tests, BBSD with the model,
and a label-shift estimate (BBSE-hard fitted on a held-out source part, estimated on the whole
target), each timed, while a thread samples every worker's resident memory every 0.5 s (peak
reported) and counts workers lost.

``--part fit``: ``--rows`` rows per table; each path in its own process (peak memory its own):
in-memory (pandas) and Dask (a LocalCluster of 2 workers, as the command line starts), the same
three steps. Reported: time per step and the ratio, equality of the exact statistics (χ², missing
counts, BBSD's χ² part, BBSE-hard's estimate), the KS distances against their stated bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WORK = Path(__file__).resolve().parent / "_work" / "scale"
D = 20
PRIOR = {"source": np.array([0.5, 0.3, 0.2]), "target": np.array([0.3, 0.3, 0.4])}
MU = np.zeros((3, D))
MU[0, 0], MU[1, 1], MU[2, 2], MU[:, 3] = 1.0, 1.0, 1.0, (-0.5, 0.0, 0.5)
FEATURES = [f"n{j}" for j in range(D)] + ["c0", "c1"]
ROWS_PER_FILE = 200_000


class BayesModel:
    """The source's Bayes classifier for the generating model: softmax(x mu_y' - |mu_y|^2/2 +
    log p_s(y)); a NumPy callable from (n, 20) features to (n, 3) probabilities."""

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)[:, :4]  # the others carry no signal (n19: NaN)
        logits = x @ MU[:, :4].T - 0.5 * (MU**2).sum(1) + np.log(PRIOR["source"])
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)


def _write(name: str, rows: int, seed: int) -> float:
    """One table as Parquet files of ``ROWS_PER_FILE`` rows; returns its size in bytes."""
    folder = WORK / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    table = "source" if name.startswith("source") else "target"
    sizes = np.diff(np.append(np.arange(0, rows, ROWS_PER_FILE), rows))
    for i, size in enumerate(sizes):
        y = rng.choice(3, size=size, p=PRIOR[table])
        x = rng.standard_normal((size, D)) + MU[y]
        frame = pd.DataFrame(x, columns=FEATURES[:D])
        frame["c0"] = pd.Categorical.from_codes(rng.integers(0, 4, size), list("abcd"))
        flip = rng.random(size) < 0.3
        frame["c1"] = pd.Categorical.from_codes(
            np.where(flip, rng.integers(0, 3, size), y), list("xyz")
        )
        frame.loc[rng.random(size) < 0.02, "n19"] = np.nan
        frame["y"] = y
        frame.to_parquet(folder / f"part{i:04d}.parquet", compression=None, index=False)
    return float(sum(f.stat().st_size for f in folder.iterdir()))


def _steps(src: Any, tgt: Any, held: Any, model: BayesModel) -> dict[str, Any]:
    """The three steps on pandas or Dask tables; time and result of each."""
    from nndoctor.shift import LabelShiftEstimator, bbsd_test, feature_test

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    feats = feature_test(src[FEATURES], tgt[FEATURES], random_state=0)
    out["features"] = {"seconds": time.perf_counter() - t0, "result": feats.to_dict()}
    t0 = time.perf_counter()
    xs, xt = src[FEATURES[:D]], tgt[FEATURES[:D]]
    bbsd = bbsd_test(xs, xt, model=model)
    out["bbsd"] = {"seconds": time.perf_counter() - t0, "result": bbsd.to_dict()}
    t0 = time.perf_counter()
    if hasattr(held, "map_partitions"):  # Dask: probabilities per partition, on the workers
        cols = ["p0", "p1", "p2"]
        meta = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in cols})

        def probs(frame: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame(model(frame[FEATURES[:D]].to_numpy()), columns=cols)

        ps, pt = held.map_partitions(probs, meta=meta), tgt.map_partitions(probs, meta=meta)
    else:
        ps, pt = model(held[FEATURES[:D]].to_numpy()), model(tgt[FEATURES[:D]].to_numpy())
    est = LabelShiftEstimator("bbse-hard", n_bootstrap=0, random_state=0).fit(ps, held["y"])
    shift = est.estimate(pt)
    out["labels"] = {"seconds": time.perf_counter() - t0, "result": shift.to_dict()}
    return out


class _MemoryWatch:
    """Samples every worker's resident memory (``client.run``) every ``every`` seconds."""

    def __init__(self, client: Any, every: float = 0.5) -> None:
        self.client, self.every = client, every
        self.peak: dict[str, int] = {}
        self.workers_seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import psutil

        def rss() -> int:
            return int(psutil.Process().memory_info().rss)

        while not self._stop.wait(self.every):
            try:
                got = self.client.run(rss, on_error="ignore")
            except OSError:
                continue
            for addr, value in got.items():
                if isinstance(value, int):
                    self.workers_seen.add(addr)
                    self.peak[addr] = max(self.peak.get(addr, 0), value)

    def __enter__(self) -> _MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _large(args: argparse.Namespace) -> None:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    total_rows = int(args.gib * 2**30 / (D * 8 + 8 + 2 + 2))  # float features, y, two codes
    rows = total_rows // 2
    t0 = time.perf_counter()
    size = _write("source", rows, 1) + _write("target", rows, 2)
    held_rows = 200_000
    _write("source-held", held_rows, 3)
    print(f"wrote {rows:,} rows x {len(FEATURES) + 1} columns per table, {size / 2**30:.2f} GiB "
          f"of Parquet in {time.perf_counter() - t0:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    memory = args.workers * args.worker_mib * 2**20
    print(f"data / total worker memory: {size / memory:.1f}x "
          f"({args.workers} workers x {args.worker_mib} MiB)", flush=True)  # fmt: skip
    try:
        with (
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                memory_limit=f"{args.worker_mib}MiB",
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            src = dd.read_parquet(str(WORK / "source"))
            tgt = dd.read_parquet(str(WORK / "target"))
            held = dd.read_parquet(str(WORK / "source-held"))
            print(f"partitions: {src.npartitions} + {tgt.npartitions}", flush=True)
            start_workers = set(cluster.scheduler.workers)
            t0 = time.perf_counter()
            with _MemoryWatch(client) as watch:
                out = _steps(src, tgt, held, BayesModel())
            wall = time.perf_counter() - t0
            lost = len(watch.workers_seen - start_workers)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    for step in ("features", "bbsd", "labels"):
        print(f"{step:<9} {out[step]['seconds']:>8.1f} s")
    print(f"total     {wall:>8.1f} s")
    peaks = sorted(watch.peak.values())
    print(f"peak worker resident memory: {', '.join(f'{p / 2**20:.0f} MiB' for p in peaks)} "
          f"(limit {args.worker_mib} MiB); workers replaced during the run: {lost}")  # fmt: skip
    _show(out)


def _show(out: dict[str, Any]) -> None:
    feats = out["features"]["result"]["features"]
    print("drifted features:", [f["name"] for f in feats if f["drifted"]])
    worst = max(feats, key=lambda f: f.get("statistic_error") or 0)
    print(f"largest KS sketch bound: {worst['statistic_error']:.5f} ({worst['name']})")
    b = out["bbsd"]["result"]
    print(f"BBSD: pvalue {b['pvalue']:.3g}, drift {b.get('drift_detected')}")
    lab = out["labels"]["result"]
    print(f"label shift (bbse-hard): target prior {np.round(lab['target_prior'], 4).tolist()} "
          f"(truth {PRIOR['target'].tolist()}), source prior "
          f"{np.round(lab['source_prior'], 4).tolist()}")  # fmt: skip


def _fit_run(mode: str) -> dict[str, Any]:
    """One path of ``--part fit`` in this process (reading included in the first step)."""
    t0 = time.perf_counter()
    if mode == "in-memory":
        src = pd.read_parquet(WORK / "source")
        tgt = pd.read_parquet(WORK / "target")
        held = pd.read_parquet(WORK / "source-held")
        read = time.perf_counter() - t0
        out = _steps(src, tgt, held, BayesModel())
    else:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster),
        ):
            src = dd.read_parquet(str(WORK / "source"))
            tgt = dd.read_parquet(str(WORK / "target"))
            held = dd.read_parquet(str(WORK / "source-held"))
            read = time.perf_counter() - t0  # starting the cluster
            out = _steps(src, tgt, held, BayesModel())
    out["read"] = {"seconds": read}
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _fit(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    _write("source", args.rows, 1)
    _write("target", args.rows, 2)
    _write("source-held", 200_000, 3)
    print(f"wrote {args.rows:,} rows x {len(FEATURES) + 1} columns per table in "
          f"{time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f}",
          flush=True)  # fmt: skip
    res = {}
    try:
        for mode in ("in-memory", "dask"):
            cmd = [sys.executable, __file__, "--run", mode]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"{mode} failed:\n{proc.stderr[-4000:]}")
            res[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    mem, dsk = res["in-memory"], res["dask"]
    steps = ("read", "features", "bbsd", "labels")
    print(f"{'step':<10} {'in-memory s':>12} {'dask s':>8} {'ratio':>6}")
    for step in steps:
        a, b = mem[step]["seconds"], dsk[step]["seconds"]
        print(f"{step:<10} {a:>12.1f} {b:>8.1f} {b / a:>6.2f}")
    total = [
        sum(r[s]["seconds"] for s in ("read", "features", "bbsd", "labels")) for r in (mem, dsk)
    ]
    print(f"{'total':<10} {total[0]:>12.1f} {total[1]:>8.1f} {total[1] / total[0]:>6.2f}")
    print(f"peak resident memory of the client process: in-memory {mem['peak_mib']:.0f} MiB, "
          f"dask {dsk['peak_mib']:.0f} MiB (its workers not counted)")  # fmt: skip
    print(f"{'column':<7} {'test':<5} {'exact':>10} {'dask':>10} {'|diff|':>9} {'bound':>9} ok")
    all_ok = True
    for e, d in zip(mem["features"]["result"]["features"], dsk["features"]["result"]["features"],
                    strict=True):  # fmt: skip
        diff = abs(e["statistic"] - d["statistic"])
        if e["test"] == "chi2":
            ok = e["statistic"] == d["statistic"] and e["pvalue"] == d["pvalue"]
        else:
            ok = diff <= d["statistic_error"]
        ok = ok and e["missingness"] == d["missingness"]
        all_ok = all_ok and ok
        print(f"{e['name']:<7} {e['test']:<5} {e['statistic']:>10.5g} {d['statistic']:>10.5g} "
              f"{diff:>9.2g} {d['statistic_error']:>9.2g} {ok}")  # fmt: skip
    print(f"every χ² and missing count equal, every KS within its bound: {all_ok}")
    bm, bd = mem["bbsd"]["result"], dsk["bbsd"]["result"]
    print(f"BBSD χ² part equal: {bm.get('chi2_statistic') == bd.get('chi2_statistic')} "
          f"({bm.get('chi2_statistic')} vs {bd.get('chi2_statistic')}); p-values "
          f"{bm['pvalue']:.3g} vs {bd['pvalue']:.3g}")  # fmt: skip
    lm, ld = mem["labels"]["result"], dsk["labels"]["result"]
    print(f"BBSE-hard target prior equal: {lm['target_prior'] == ld['target_prior']} "
          f"({np.round(lm['target_prior'], 5).tolist()} vs "
          f"{np.round(ld['target_prior'], 5).tolist()}; "
          f"truth {PRIOR['target'].tolist()})")  # fmt: skip
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["large", "fit"], default="large")
    parser.add_argument("--gib", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-mib", type=int, default=768)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--run", choices=["in-memory", "dask"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(_fit_run(args.run)))
    elif args.part == "large":
        _large(args)
    else:
        _fit(args)


if __name__ == "__main__":
    main()
