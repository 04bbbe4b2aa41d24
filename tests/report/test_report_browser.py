"""The HTML report in a real headless Chromium: it loads cleanly, renders, and stays inert."""

from __future__ import annotations

from pathlib import Path

import pytest

from nndoctor.exceptions import MissingDependencyError
from nndoctor.report import (
    Figure,
    Section,
    figure_to_png_base64,
    new_figure,
    to_sections,
    write_html,
)
from nndoctor.report._browser import find_chromium, load_page
from nndoctor.scenarios import flu_season

EVIL = "<script>alert(1)</script>"
EVIL_PAYLOAD = "</script><script>alert(3)</script><!--"

CHECKS = """
(() => {
  const sections = [...document.querySelectorAll('section.report-section')];
  return {
    sections: sections.map(s => ({
      id: s.id,
      title: s.querySelector('h2').textContent,
      height: s.getBoundingClientRect().height,
      visible: getComputedStyle(s).display !== 'none',
    })),
    images: [...document.images].map(i => ({
      complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
      shown: i.getBoundingClientRect().width,
    })),
    headers: [...document.querySelectorAll('th')].map(t => t.textContent),
    cells: [...document.querySelectorAll('td')].map(t => t.textContent),
    title: document.title,
    scripts: [...document.querySelectorAll('script')].map(s => s.type),
    payloads: [...document.querySelectorAll('script.payload')].map(s => JSON.parse(s.textContent)),
    injected: document.querySelectorAll('img[src="x"], body > script').length,
  };
})()
"""


def _sections() -> list[Section]:
    fig, ax = new_figure(width=4, height=3)
    ax.plot([1, 2, 4, 8], [1.0, 0.3, 0.08, 0.01], marker="o")
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    plot = Figure("Second moment by layer", figure_to_png_base64(fig), alt="a falling line")
    return [
        Section(
            "Signal by layer",
            "warning",
            "The forward signal shrinks ×0.3 per layer; use Kaiming initialization.",
            ({"layer": 1, "gain": 0.3}, {"layer": 2, "gain": 0.27}),
            (plot,),
            payload={"gains": [0.3, 0.27], "note": EVIL_PAYLOAD},
        ),
        Section(
            f"Columns of {EVIL}",
            "error",
            f"Column {EVIL} drifted.",
            ({"feature": EVIL, EVIL: "<img src=x onerror=alert(2)>"},),
            payload={"column": EVIL},
        ),
        Section("No payload", "ok", "Nothing to see.", ({"a": 1},)),
        *to_sections(flu_season(n_source=200, n_target=200), figures=True),
    ]


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    if find_chromium() is None:
        pytest.fail(
            "Chromium is needed for the report's browser test and was not found; install it "
            "with `make browser` (or `apt-get install chromium`), or set NNDOCTOR_CHROMIUM"
        )
    sections = _sections()
    page = write_html(tmp_path / "report.html", f"Report on {EVIL}", sections)
    result = load_page(page, expression=CHECKS, screenshot=True, timeout=90)

    assert result.console_errors == ()
    assert result.dialogs == ()  # no alert ever ran
    info = result.value
    # every section is there, visible and laid out
    assert [s["title"] for s in info["sections"]] == [s.title for s in sections]
    assert all(s["visible"] and s["height"] > 20 for s in info["sections"])
    # every image decoded and is shown
    assert len(info["images"]) == sum(len(s.figures) for s in sections) == 2
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in info["images"])
    assert all(i["shown"] > 50 for i in info["images"])
    # user strings are text, not markup
    assert EVIL in info["headers"]
    assert EVIL in info["cells"]
    assert "<img src=x onerror=alert(2)>" in info["cells"]
    assert info["title"] == f"Report on {EVIL}"
    assert info["injected"] == 0
    assert set(info["scripts"]) == {"application/json"}  # nothing executable on the page
    # every section's JSON is embedded and reads back exactly
    assert len(info["payloads"]) == len(sections)
    assert info["payloads"][0] == {"gains": [0.3, 0.27], "note": EVIL_PAYLOAD}
    assert info["payloads"][2]["title"] == "No payload"
    assert info["payloads"][3]["name"] == "flu_season"
    # the screenshot is a PNG of the whole page
    assert result.screenshot_png is not None
    assert result.screenshot_png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.browser
def test_the_harness_sees_errors_dialogs_and_broken_images(tmp_path: Path) -> None:
    """Negative control: a page that misbehaves in every way the report must not."""
    if find_chromium() is None:
        pytest.fail("Chromium not found; install it with `make browser`")
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><img src='missing.png'>"
        "<script>alert('hi'); console.error('boom'); throw new Error('oops')</script>"
        "</body></html>"
    )
    result = load_page(bad, expression="[...document.images].map(i => i.naturalWidth)")
    assert result.dialogs == ("hi",)
    assert any("boom" in e for e in result.console_errors)
    assert any("oops" in e for e in result.console_errors)
    assert any("ERR_FILE_NOT_FOUND" in e for e in result.console_errors)
    assert result.value == [0]


def test_missing_chromium_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NNDOCTOR_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert find_chromium() is None
    with pytest.raises(MissingDependencyError, match="make browser"):
        load_page(tmp_path / "x.html")
