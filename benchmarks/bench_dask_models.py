"""Model outputs on Dask beside the in-memory path: BBSD, label shift, estimated accuracy.

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_dask_models.py [--rows 1000000]
      [--classes 5] [--partitions 8]

Draws a held-out source set and a target set of class probabilities (a slightly overconfident
model on Gaussian classes; the target's class proportions moved), keeps them as NumPy arrays
and as Dask arrays over the same buffers (``--partitions`` chunks each; Dask's default local
threads), and runs each function both ways on the same data. Reported per function: the
wall time of each path and their ratio, and how the Dask answer compares: the BBSD counts and
χ² (equal to the last digit?), the largest ``|KS_dask - KS_exact|`` against ``ks_error``, the
label-shift weights (bit-equal for BBSE's counts, max abs difference for EM-BCTS), and the
accuracy estimates' point values. Reading data is not part of this benchmark (see
``bench_dask.py`` for Parquet).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _draw(n: int, k: int, prior: np.ndarray, rng: np.random.Generator) -> tuple:
    y = rng.choice(k, size=n, p=prior)
    x = rng.normal(1.2 * y, 1.0)
    logits = -1.3 * (x[:, None] - 1.2 * np.arange(k)[None, :]) ** 2 / 2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), y


def _timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    """Run every function both ways and print a Markdown table."""
    import dask
    import dask.array as da

    from nndoctor.shift import LabelShiftEstimator, bbsd_test, estimate_accuracy

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=8)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    k, n = args.classes, args.rows
    Ps, ys = _draw(n // 5, k, np.full(k, 1 / k), rng)  # a held-out set a fifth of the target
    prior_t = np.linspace(2.0, 1.0, k)
    Pt, _ = _draw(n, k, prior_t / prior_t.sum(), rng)
    chunk_s, chunk_t = -(-Ps.shape[0] // args.partitions), -(-n // args.partitions)
    dPs, dys = da.from_array(Ps, chunks=(chunk_s, k)), da.from_array(ys, chunks=chunk_s)
    dPt = da.from_array(Pt, chunks=(chunk_t, k))
    rows = []
    warnings.simplefilter("ignore")
    with dask.config.set(scheduler="threads"):
        want, t_mem = _timed(lambda: bbsd_test(Ps, Pt))
        got, t_dask = _timed(lambda: bbsd_test(dPs, dPt))
        same = (
            np.array_equal(got.source_counts, want.source_counts)
            and np.array_equal(got.target_counts, want.target_counts)
            and got.chi2_statistic == want.chi2_statistic
            and got.chi2_pvalue == want.chi2_pvalue
        )
        ks = float(np.max(np.abs(got.ks_statistics - want.ks_statistics)))
        rows.append(
            ("bbsd_test", t_mem, t_dask,
             f"counts and χ² equal: {same}; max KS diff {ks:.2g} <= ks_error "
             f"{got.ks_error:.2g}: {ks <= got.ks_error}")
        )  # fmt: skip
        for method in ("bbse-hard", "em-bcts"):

            def run(P: object, y: object, T: object, method: str = method) -> object:
                return LabelShiftEstimator(method, n_bootstrap=0).fit(P, y).estimate(T)

            want_ls, t_mem = _timed(lambda run=run: run(Ps, ys, Pt))
            got_ls, t_dask = _timed(lambda run=run: run(dPs, dys, dPt))
            diff = float(np.max(np.abs(got_ls.weights - want_ls.weights)))
            rows.append(
                (f"LabelShiftEstimator({method!r}) fit + estimate", t_mem, t_dask,
                 f"max |w_dask - w_mem| = {diff:.2g} (bit-equal: {diff == 0}); EM iterations "
                 f"{got_ls.n_iter} vs {want_ls.n_iter}")
            )  # fmt: skip
        kw = {"method": "confidence-based", "n_bootstrap": 200, "random_state": 0}
        want_a, t_mem = _timed(lambda: estimate_accuracy(Ps, ys, Pt, **kw))
        got_a, t_dask = _timed(lambda: estimate_accuracy(dPs, dys, dPt, **kw))
        rows.append(
            ("estimate_accuracy('confidence-based', n_bootstrap=200)", t_mem, t_dask,
             f"accuracy {got_a.accuracy:.6f} vs {want_a.accuracy:.6f} (diff "
             f"{abs(got_a.accuracy - want_a.accuracy):.1g}); interval "
             f"[{got_a.ci_low:.4f}, {got_a.ci_high:.4f}] vs "
             f"[{want_a.ci_low:.4f}, {want_a.ci_high:.4f}]")
        )  # fmt: skip
    print(f"{n:,} target rows, {Ps.shape[0]:,} held-out rows, {k} classes, "
          f"{args.partitions} partitions each, Dask threads\n")  # fmt: skip
    print("| function | in-memory | Dask | ratio | Dask answer vs in-memory |")
    print("|---|---|---|---|---|")
    for name, a, b, note in rows:
        print(f"| {name} | {a:.2f} s | {b:.2f} s | {b / a:.2f} | {note} |")


if __name__ == "__main__":
    main()
