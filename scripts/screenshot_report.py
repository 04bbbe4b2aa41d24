"""Render an HTML report to a PNG with headless Chromium (for the README's screenshot).

    PYTHONPATH=src python scripts/screenshot_report.py checkup-report/index.html \
        docs/img/report.png --width 1200 --max-height 1600 --scale 1

Needs Chromium (``make browser`` or ``apt-get install chromium``). Exits 1 when the page logs
console errors or opens a dialog, so a broken report never becomes the README's picture.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nndoctor.report._browser import load_page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report to render")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1200, help="viewport width in CSS pixels")
    parser.add_argument("--max-height", type=int, default=None, help="cut at this height")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixels per CSS pixel")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        parser.error(f"{args.html} does not exist")
    result = load_page(
        args.html, screenshot=True, width=args.width, scale=args.scale, max_height=args.max_height
    )
    problems = [*result.console_errors, *(f"dialog: {d}" for d in result.dialogs)]
    if problems:
        print("the page is not clean:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    assert result.screenshot_png is not None  # asked for above
    args.png.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.png.with_name(f".{args.png.name}.tmp")
    tmp.write_bytes(result.screenshot_png)
    tmp.replace(args.png)
    print(f"wrote {args.png} ({len(result.screenshot_png) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
