"""evidently's Spark engine on the Parquet data of ``bench_dask_scale.py --part fit`` (issue 17).

Run (in its own venv; Java 17 at /usr/bin/java):

    python3 -m venv benchmarks/.venv-spark
    benchmarks/.venv-spark/bin/pip install evidently pyspark pyarrow
    benchmarks/.venv-spark/bin/python benchmarks/bench_evidently_spark.py [--rows 2000000]

Writes the same two tables as ``bench_dask_scale.py --part fit`` (same seeds, same generator,
imported from it) under ``benchmarks/_work/spark/``, then runs evidently's legacy Spark engine
(``evidently.legacy.spark.engine.SparkEngine``: the only one evidently has) with its data-drift
metrics ``DataDriftTable`` and ``DatasetDriftMetric`` (what its ``DataDriftPreset`` is made of)
on ``local[2]``, timed from reading the files to the result (the JVM start is timed apart).
Prints each column's test, score and verdict, and the dataset verdict. The data are deleted
afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_dask_scale as scale  # noqa: E402  # the generator, shared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    scale.WORK = HERE / "_work" / "spark"
    t0 = time.perf_counter()
    scale._write("source", args.rows, 1)
    scale._write("target", args.rows, 2)
    print(f"wrote {args.rows:,} rows per table in {time.perf_counter() - t0:.0f} s; load "
          f"average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    try:
        _run(scale.WORK)
    finally:
        if not args.keep:
            shutil.rmtree(scale.WORK, ignore_errors=True)


def _run(work: Path) -> None:
    import evidently
    import pyspark
    from evidently.legacy.metrics import DataDriftTable, DatasetDriftMetric
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report
    from evidently.legacy.spark.engine import SparkEngine
    from pyspark.sql import SparkSession

    t0 = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    print(f"evidently {evidently.__version__}, pyspark {pyspark.__version__}; Spark started in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    ref = spark.read.parquet(str(work / "source")).drop("y")
    cur = spark.read.parquet(str(work / "target")).drop("y")
    mapping = ColumnMapping(
        numerical_features=scale.FEATURES[: scale.D], categorical_features=["c0", "c1"]
    )
    report = Report(metrics=[DataDriftTable(), DatasetDriftMetric()])
    report.run(reference_data=ref, current_data=cur, column_mapping=mapping, engine=SparkEngine)
    result = report.as_dict()
    seconds = time.perf_counter() - t0
    table, dataset = result["metrics"][0]["result"], result["metrics"][1]["result"]
    print(f"evidently Spark engine: {seconds:.1f} s (reading included)")
    print(f"{'column':<7} {'test':<28} {'score':>10} drift")
    for name, col in table["drift_by_columns"].items():
        print(f"{name:<7} {col['stattest_name']:<28} {col['drift_score']:>10.4g} "
              f"{col['drift_detected']}")  # fmt: skip
    drifted, share = dataset["number_of_drifted_columns"], dataset["share_of_drifted_columns"]
    print(f"dataset drift: {dataset['dataset_drift']} ({drifted} of "
          f"{dataset['number_of_columns']} columns, share {share:.2f})")  # fmt: skip
    spark.stop()


if __name__ == "__main__":
    main()
