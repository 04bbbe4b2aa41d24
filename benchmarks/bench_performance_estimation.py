"""Label-free performance estimation: nndoctor's estimators against NannyML's CBPE, side by side.

Two problems where the truth is known, both shipped with NannyML:

* **car loan** (binary): reference 50,000 rows, analysis 50,000 rows in 10 chunks of 5,000; the
  model's probabilities are rounded to 0.01 (14 % exactly 0 or 1) and it predicts "repaid" at
  ``y_pred_proba >= 0.65`` (the ``y_pred`` column), so every estimator scores those predictions.
* **credit cards** (multiclass, 3 classes): reference 60,000 rows, analysis 60,000 in 10 chunks
  of 6,000; predictions are the ``y_pred`` column.

For each chunk: the realized metric from the analysis targets, CBPE's estimate, and each nndoctor
estimator's; the table gives the mean absolute error over the chunks. Times: interleaved rounds
(CBPE, nndoctor default, CBPE, nndoctor default, ...), each the fit on the reference plus the
estimate on all 10 chunks, measured inside its own process (interpreter start and data loading
excluded); median and range, with the load average before and after.

NannyML lives in its own virtual environment (git-ignored)::

    python3 -m venv benchmarks/.venv-nannyml
    benchmarks/.venv-nannyml/bin/pip install nannyml statsmodels pyarrow

Run (from the repository root; NannyML exports its data to ``benchmarks/_work/`` first)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src /work/main/.venv/bin/python \\
        benchmarks/bench_performance_estimation.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
NANNY_PY = HERE / ".venv-nannyml" / "bin" / "python"
CAR_CHUNK, CARD_CHUNK = 5000, 6000
CARD_CLASSES = ("prepaid_card", "highstreet_card", "upmarket_card")
BINARY = ("accuracy", "precision", "recall", "f1", "roc_auc")


# ------------------------------------------------------------------------------------------
# NannyML side (runs in benchmarks/.venv-nannyml)


def _export() -> None:
    """Write both data sets, features encoded as numbers, to benchmarks/_work/*.parquet."""
    import nannyml as nml
    import pandas as pd

    WORK.mkdir(exist_ok=True)
    ref, ana, tgt = nml.load_synthetic_car_loan_dataset()
    ana = ana.merge(tgt, on="id")
    for df, name in ((ref, "reference"), (ana, "analysis")):
        out = df.copy()
        out["salary_range"] = out["salary_range"].map(
            {v: i for i, v in enumerate(sorted(ref["salary_range"].unique()))}
        )
        out["size_of_downpayment"] = out["size_of_downpayment"].str.rstrip("%").astype(float)
        out["repaid_loan_on_prev_car"] = out["repaid_loan_on_prev_car"].astype(float)
        out.drop(columns=["timestamp"]).to_parquet(WORK / f"car_{name}.parquet")
    ref, ana, tgt = nml.load_synthetic_multiclass_classification_dataset()
    ana = ana.merge(tgt, on="id")
    codes = {c: i for i, c in enumerate(CARD_CLASSES)}
    for df, name in ((ref, "reference"), (ana, "analysis")):
        out = df.copy()
        for col in ("acq_channel", "app_channel"):
            out[col] = out[col].map({v: i for i, v in enumerate(sorted(ref[col].unique()))})
        out["is_customer"] = out["is_customer"].astype(float)
        out["y_pred"] = out["y_pred"].map(codes)
        out["y_true"] = out["y_true"].map(codes)
        out.drop(columns=["timestamp"]).to_parquet(WORK / f"card_{name}.parquet")
    print(json.dumps({"exported": str(WORK), "nannyml": nml.__version__, "pandas": pd.__version__}))


def _cbpe(problem: str) -> None:
    """Fit CBPE on the reference and estimate the 10 analysis chunks; print JSON."""
    import warnings

    import nannyml as nml
    import pandas as pd

    warnings.filterwarnings("ignore", category=FutureWarning, module="nannyml")
    ref = pd.read_parquet(WORK / f"{problem}_reference.parquet")
    ana = pd.read_parquet(WORK / f"{problem}_analysis.parquet")
    if problem == "car":
        target, chunk = "repaid", CAR_CHUNK
        kwargs: dict[str, Any] = {
            "y_pred_proba": "y_pred_proba",
            "problem_type": "classification_binary",
            "metrics": list(BINARY),
        }
    else:
        target, chunk = "y_true", CARD_CHUNK
        for df in (ref, ana):
            for k, c in enumerate(CARD_CLASSES):
                df[c] = (df["y_pred"] == k).astype(int)
        kwargs = {
            "y_pred_proba": {k: f"y_pred_proba_{c}" for k, c in enumerate(CARD_CLASSES)},
            "problem_type": "classification_multiclass",
            "metrics": ["accuracy"],
        }
    ana = ana.drop(columns=[target])
    t0 = time.perf_counter()
    est = nml.CBPE(y_pred="y_pred", y_true=target, chunk_size=chunk, **kwargs)
    est.fit(ref)
    res = est.estimate(ana)
    seconds = time.perf_counter() - t0
    df = res.filter(period="analysis").to_df()
    out = {m: df[(m, "value")].tolist() for m in kwargs["metrics"]}
    lo = {m: df[(m, "lower_confidence_boundary")].tolist() for m in kwargs["metrics"]}
    hi = {m: df[(m, "upper_confidence_boundary")].tolist() for m in kwargs["metrics"]}
    print(json.dumps({"seconds": seconds, "estimates": out, "lower": lo, "upper": hi}))


# ------------------------------------------------------------------------------------------
# nndoctor side (our venv)


def _load(problem: str) -> dict[str, Any]:
    import pandas as pd

    ref = pd.read_parquet(WORK / f"{problem}_reference.parquet")
    ana = pd.read_parquet(WORK / f"{problem}_analysis.parquet")
    if problem == "car":
        feats = [
            "car_value", "salary_range", "debt_to_income_ratio", "loan_length",
            "repaid_loan_on_prev_car", "size_of_downpayment", "driver_tenure",
        ]  # fmt: skip
        probs = ["y_pred_proba"]
        target, chunk = "repaid", CAR_CHUNK
    else:
        feats = [
            "acq_channel", "app_behavioral_score", "requested_credit_limit", "app_channel",
            "credit_bureau_score", "stated_income", "is_customer",
        ]  # fmt: skip
        probs = [f"y_pred_proba_{c}" for c in CARD_CLASSES]
        target, chunk = "y_true", CARD_CHUNK

    def arrays(df: Any) -> dict[str, np.ndarray]:
        p = df[probs].to_numpy(dtype=np.float64)
        # rows rounded to 0.01 may sum to 0.99-1.01
        p = p / p.sum(axis=1, keepdims=True) if p.shape[1] > 1 else p[:, 0]
        X = df[feats].to_numpy(dtype=np.float64)
        X = (X - ref[feats].to_numpy(dtype=np.float64).mean(0)) / ref[feats].to_numpy(
            dtype=np.float64
        ).std(0)
        return {
            "p": p,
            "y": df[target].to_numpy().astype(np.int64),
            "pred": df["y_pred"].to_numpy().astype(np.int64),
            "X": X,
        }

    a = arrays(ana)
    n_chunks = a["p"].shape[0] // chunk
    chunks = [{k: v[i * chunk : (i + 1) * chunk] for k, v in a.items()} for i in range(n_chunks)]
    return {"ref": arrays(ref), "chunks": chunks}


def _realized(c: dict[str, np.ndarray], binary: bool) -> dict[str, float]:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    out = {"accuracy": float(np.mean(c["pred"] == c["y"]))}
    if binary:
        out["precision"] = float(precision_score(c["y"], c["pred"]))
        out["recall"] = float(recall_score(c["y"], c["pred"]))
        out["f1"] = float(f1_score(c["y"], c["pred"]))
        out["roc_auc"] = float(roc_auc_score(c["y"], c["p"]))
    return out


def _ours(data: dict[str, Any], method: str) -> tuple[list[Any], float]:
    """Estimate every chunk with one nndoctor method; returns the estimates and the seconds."""
    from nndoctor.shift import estimate_accuracy

    ref = data["ref"]
    t0 = time.perf_counter()
    out = []
    for c in data["chunks"]:
        extra: dict[str, Any] = {}
        if method == "importance-weighted":
            extra = {"source_X": ref["X"], "target_X": c["X"]}
        est = estimate_accuracy(
            ref["p"], ref["y"], c["p"], method=method, source_pred=ref["pred"],
            target_pred=c["pred"], random_state=0, **extra,
        )  # fmt: skip
        out.append(est)
    return out, time.perf_counter() - t0


def _peer(problem: str) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [str(NANNY_PY), __file__, "cbpe", "--problem", problem],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def _spread(ts: list[float]) -> str:
    return f"{np.median(ts):.2f} s ({min(ts):.2f}-{max(ts):.2f})"


def _compare(problem: str, rounds: int, methods: list[str]) -> dict[str, Any]:
    data = _load(problem)
    binary = problem == "car"
    metrics = list(BINARY) if binary else ["accuracy"]
    truth = [_realized(c, binary) for c in data["chunks"]]
    load_before = os.getloadavg()
    t_peer: list[float] = []
    t_ours: list[float] = []
    peer: dict[str, Any] = {}
    default: list[Any] = []
    for _ in range(rounds):  # interleaved: CBPE, nndoctor, CBPE, nndoctor, ...
        peer = _peer(problem)
        t_peer.append(float(peer["seconds"]))
        default, t = _ours(data, "confidence-based")
        t_ours.append(t)
    load_after = os.getloadavg()
    rows: dict[str, dict[str, Any]] = {}
    for m in metrics:
        est = np.array(peer["estimates"][m])
        real = np.array([t[m] for t in truth])
        inside = (np.array(peer["lower"][m]) <= real) & (real <= np.array(peer["upper"][m]))
        rows.setdefault("NannyML CBPE", {})[m] = (float(np.mean(np.abs(est - real))), inside)
    others: dict[str, float] = {}
    for method in methods:
        if method == "confidence-based":
            ests, secs = default, float(np.median(t_ours))
        else:
            ests, secs = _ours(data, method)
        others[method] = secs
        for m in metrics:
            if m not in ests[0].metrics:
                continue
            val = np.array([e.metrics[m].value for e in ests])
            real = np.array([t[m] for t in truth])
            lo = np.array([e.metrics[m].ci_low for e in ests])
            hi = np.array([e.metrics[m].ci_high for e in ests])
            rows.setdefault(f"nndoctor {method}", {})[m] = (
                float(np.mean(np.abs(val - real))),
                (lo <= real) & (real <= hi),
            )
    print(f"\n## {problem}: per-chunk mean absolute error (10 chunks), interval coverage")
    print("| estimator | " + " | ".join(metrics) + " | time (fit + 10 chunks) |")
    print("|---|" + "---|" * (len(metrics) + 1))
    for name, r in rows.items():
        cells = []
        for m in metrics:
            if m not in r:
                cells.append("-")
                continue
            mae, inside = r[m]
            cov = f" ({int(inside.sum())}/10 in CI)" if np.isfinite(mae) else ""
            cells.append(f"{mae:.4f}{cov}")
        if name == "NannyML CBPE":
            tcell = _spread(t_peer)
        elif name == "nndoctor confidence-based":
            tcell = _spread(t_ours)
        else:
            tcell = f"{others[name.removeprefix('nndoctor ')]:.2f} s (one run)"
        print(f"| {name} | " + " | ".join(cells) + f" | {tcell} |")
    acc_real = [t["accuracy"] for t in truth]
    print(
        f"\nrealized accuracy per chunk: {np.round(acc_real, 4).tolist()}\n"
        f"CBPE accuracy per chunk:     {np.round(peer['estimates']['accuracy'], 4).tolist()}\n"
        f"nndoctor default per chunk:  {np.round([e.accuracy for e in default], 4).tolist()}\n"
        f"time ratio nndoctor / CBPE (medians of {rounds} interleaved rounds): "
        f"{np.median(t_ours) / np.median(t_peer):.2f}\n"
        f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}"
    )
    return {
        "problem": problem,
        "mae": {k: {m: v[0] for m, v in r.items()} for k, r in rows.items()},
        "seconds": {"cbpe": t_peer, "nndoctor-default": t_ours, "others": others},
        "load": [load_before, load_after],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", default="all", choices=["all", "export", "cbpe"])
    parser.add_argument("--problem", default="car", choices=["car", "card"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--methods",
        default="confidence-based,atc,calibrated-confidence,importance-weighted,label-shift",
    )
    args = parser.parse_args()
    if args.part == "export":
        _export()
        return
    if args.part == "cbpe":
        _cbpe(args.problem)
        return
    if not (WORK / "card_analysis.parquet").exists():
        subprocess.run([str(NANNY_PY), __file__, "export"], check=True)
    import nndoctor

    print(f"nndoctor {nndoctor.__version__}, python {sys.version.split()[0]}")
    results = [_compare(p, args.rounds, args.methods.split(",")) for p in ("car", "card")]
    (WORK / "performance_estimation.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
