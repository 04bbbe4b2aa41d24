"""Regenerate README.md from scripts/readme/README.template.md with real output of real runs.

Every ``@@KEY@@`` placeholder of the template is replaced by what the command behind it prints
(run in a fresh temporary directory, 100 columns wide); ``@@FIX@@`` and ``@@LAB@@`` are the
output of the template's own ``python`` block just above them, so the README shows exactly the
code that ran. The checkup report's screenshot (docs/img/checkup-report.png) is retaken from the
same run. ``@@BENCH@@`` is the summary table of the last ``make bench`` run
(``benchmarks/headline.md``, between its ``summary`` markers): the benchmark numbers are
quoted from that run's output, never typed in. Edit the template, never the README's output
blocks by hand.

Run from the repository root (about two minutes; the screenshot needs chromium):
    PYTHONPATH=src .venv/bin/python scripts/build_readme.py [--no-screenshot]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "scripts" / "readme"


def code_before(template: str, placeholder: str) -> str:
    """The last ```python block of ``template`` before ``placeholder``."""
    head = template[: template.index(placeholder)]
    start = head.rindex("```python\n") + len("```python\n")
    return head[start : head.index("```", start)]


def bench_summary(path: Path = ROOT / "benchmarks" / "headline.md") -> str:
    """The summary table that ``make bench`` wrote into ``path`` (between its markers)."""
    start, end = "<!-- summary:start -->", "<!-- summary:end -->"
    if not path.exists():
        sys.exit(f"{path} is missing; run `make bench` first (it writes the benchmark table)")
    text = path.read_text()
    if start not in text or end not in text:
        sys.exit(f"{path} has no {start} ... {end} block; re-run `make bench`")
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-screenshot", action="store_true", help="keep the old screenshot")
    args = parser.parse_args()
    env = dict(os.environ, COLUMNS="100", PYTHONPATH=str(ROOT / "src"))
    cli = [sys.executable, "-m", "nndoctor"]
    work = Path(tempfile.mkdtemp(prefix="nndoctor-readme-"))

    def run(*argv: str) -> str:
        done = subprocess.run(
            list(argv), cwd=work, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
        return done.stdout.rstrip()

    try:
        checkup = run(*cli, "checkup")
        chain = run(*cli, "scenario", "deep-chain", "--depth", "30", "--weight", "0.2")
        lines = chain.splitlines()
        rows = [r for r in lines if r.startswith("│ 2") and r.split()[1] in ("28", "29")]
        gap = "│ …     │        │          │          │          │          │          │"
        gap += "          │      │"
        chain = "\n".join([*lines[:12], gap, *rows, lines[-1]])
        template = (HERE / "README.template.md").read_text()
        fix = run(sys.executable, "-c", code_before(template, "@@FIX@@"))
        run(*cli, "scenario", "flu-season", "--out", "flu")
        shift_test = run(
            *cli, "shift", "test", "--source", "flu/source.csv",
            "--target", "flu/target.csv", "--label", "diagnosis",
        )  # fmt: skip
        run(*cli, "scenario", "soda-regions", "--out", "soda")
        diag_lines = run(
            *cli, "shift", "diagnose", "--source", "soda/source.csv",
            "--target", "soda/target.csv", "--label", "name",
        ).splitlines()  # fmt: skip
        cut = next(i for i, line in enumerate(diag_lines) if "Estimated weights" in line)
        diag = "\n".join(
            [*diag_lines[:cut], "..."]  # the rest: estimated weights, accuracy-drop decomposition
        )
        label = run(sys.executable, "-c", code_before(template, "@@LAB@@"))
        text = template
        values = {
            "CHECKUP": checkup,
            "CHAIN": chain,
            "FIX": fix,
            "DIAG": diag,
            "LAB": label,
            "SHIFTTEST": shift_test,
            "BENCH": bench_summary(),
        }
        for key, value in values.items():
            if f"@@{key}@@" not in text:
                sys.exit(f"the template has no @@{key}@@ placeholder")
            text = text.replace(f"@@{key}@@", value)
        (ROOT / "README.md").write_text(text)
        if not args.no_screenshot:
            run(
                sys.executable, str(ROOT / "scripts" / "screenshot_report.py"),
                str(work / "checkup-report" / "index.html"),
                str(ROOT / "docs" / "img" / "checkup-report.png"),
                "--width", "1200", "--max-height", "1400",
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("README.md regenerated")


if __name__ == "__main__":
    main()
