"""docs/notebooks/ executed on a real IPython kernel, then their HTML opened in headless Chromium.

Each notebook runs top to bottom (nbclient + ipykernel); a cell that raises fails the test, and
so does a cell whose displayed result has no HTML view (the notebooks end their cells on nndoctor
results). The executed notebooks are rendered to one HTML page (a minimal template: markdown and
code as escaped text, the results' own HTML fragments) and loaded in Chromium: no console error,
no dialog, every plot decoded.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from nndoctor.report._browser import find_chromium, load_page

NOTEBOOKS = sorted((Path(__file__).parents[1] / "docs" / "notebooks").glob("*.ipynb"))
SRC = str(Path(__file__).parents[1] / "src")


def _execute(path: Path, cwd: Path) -> Any:
    """Run the notebook on a fresh kernel (the caller puts this checkout's src on PYTHONPATH)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def _check_outputs(nb: Any, name: str) -> int:
    """Every displayed result has an HTML view and no rendering fell back; return their count."""
    shown = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr":
                assert "could not render" not in out.text, f"{name}: {out.text}"
            if out.output_type == "execute_result":
                plain = out.data.get("text/plain", "")
                if plain.startswith("'"):  # a plain string (e.g. type(fig).__name__)
                    continue
                assert "text/html" in out.data, f"{name}: a result without HTML: {plain[:80]}"
                assert "nndoctor-result" in out.data["text/html"]
                assert "<script" not in out.data["text/html"].lower()
                shown += 1
    return shown


def _render(notebooks: list[tuple[str, Any]]) -> str:
    """A minimal static page of executed notebooks (scripts and fetches forbidden by CSP)."""
    parts = []
    for name, nb in notebooks:
        parts.append(f'<article class="notebook"><h1>{html.escape(name)}</h1>')
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                parts.append(f'<div class="md"><pre>{html.escape(cell.source)}</pre></div>')
                continue
            parts.append(f'<pre class="code">{html.escape(cell.source)}</pre>')
            for out in cell.get("outputs", []):
                if out.output_type == "stream":
                    parts.append(f'<pre class="stream">{html.escape(out.text)}</pre>')
                elif "text/html" in out.get("data", {}):
                    parts.append(f'<div class="output">{out.data["text/html"]}</div>')
                elif "text/plain" in out.get("data", {}):
                    parts.append(f'<pre class="output">{html.escape(out.data["text/plain"])}</pre>')
        parts.append("</article>")
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        "<title>nndoctor notebooks</title></head><body>" + "".join(parts) + "</body></html>"
    )


CHECKS = """
(() => ({
  results: document.querySelectorAll('.nndoctor-result').length,
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth})),
  scripts: document.querySelectorAll('script').length,
}))()
"""


def test_there_are_the_three_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03"]


@pytest.mark.browser
def test_notebooks_execute_and_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if find_chromium() is None:
        pytest.fail("Chromium not found; install it with `make browser`")
    # the kernel (a child process) imports this checkout's nndoctor
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p)
    )
    executed = []
    shown = 0
    for path in NOTEBOOKS:
        nb = _execute(path, tmp_path)
        n = _check_outputs(nb, path.name)
        assert n >= 1, f"{path.name} displays no nndoctor result"
        shown += n
        executed.append((path.name, nb))
    page = tmp_path / "notebooks.html"
    page.write_text(_render(executed), encoding="utf-8")
    result = load_page(page, expression=CHECKS, timeout=90)
    assert result.console_errors == ()
    assert result.dialogs == ()
    info = result.value
    assert info["scripts"] == 0
    assert info["results"] == shown
    assert info["images"]  # the results' plots are there
    assert all(i["complete"] and i["width"] > 0 for i in info["images"])


def test_a_result_without_html_fails_the_check() -> None:
    """Negative control: a displayed result with only a plain-text view is caught."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("d")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": "<ShiftDiagnosis kind='label'>"},
            execution_count=1,
        )
    ]
    with pytest.raises(AssertionError, match="without HTML"):
        _check_outputs(nb, "x.ipynb")
    nb.cells[0].outputs[0].data["text/html"] = '<div class="nndoctor-result">ok</div>'
    assert _check_outputs(nb, "x.ipynb") == 1
