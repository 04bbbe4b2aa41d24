"""Timings of the shift scenarios and of the HTML report (generation, rendering, browser load).

    PYTHONPATH=src python benchmarks/bench_scenarios_report.py

No peer library builds these scenarios or this report, so the numbers are absolute: each
generator at its default size (budget: under 1 s), and a 40-section report with 20 plots,
rendered, written and loaded in headless Chromium (console errors counted).
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

from nndoctor.report import Figure, Section, figure_to_png_base64, new_figure, write_html
from nndoctor.report._browser import load_page
from nndoctor.scenarios import SHIFT_SCENARIOS


def _median_seconds(fn: object, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"# machine: {platform.machine()} {platform.processor() or ''}, python "
          f"{platform.python_version()}")  # fmt: skip
    print("| scenario | rows (source + target) | median seconds (5 runs) |")
    print("|---|---|---|")
    for name, make in SHIFT_SCENARIOS.items():
        make()  # warm: imports and scikit-learn's digits loader
        data = make()
        seconds = _median_seconds(make)
        print(f"| {name} | {len(data.source)} + {len(data.target)} | {seconds:.3f} |")

    fig, ax = new_figure()
    ax.plot(range(100), [i**0.5 for i in range(100)])
    png = figure_to_png_base64(fig)
    sections = [
        Section(
            f"Section {i}",
            ("ok", "info", "warning", "error")[i % 4],
            "A verdict of a sentence or two. " * 3,
            tuple({"feature": f"f{j}", "pvalue": 0.01 * j, "statistic": j} for j in range(30)),
            (Figure(f"plot {i}", png),) if i % 2 == 0 else (),
            payload={"values": list(range(200))},
        )
        for i in range(40)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        render = _median_seconds(lambda: write_html(path, "bench", sections))
        size = path.stat().st_size
        start = time.perf_counter()
        result = load_page(path, expression="document.images.length", screenshot=True)
        browser = time.perf_counter() - start
    print()
    print("| report (40 sections, 20 plots) | value |")
    print("|---|---|")
    print(f"| render + atomic write, median of 5 | {render:.3f} s |")
    print(f"| file size | {size / 1024:.0f} KiB |")
    print(f"| Chromium start + load + full-page screenshot | {browser:.2f} s |")
    print(f"| images rendered / console errors | {result.value} / {len(result.console_errors)} |")


if __name__ == "__main__":
    main()
