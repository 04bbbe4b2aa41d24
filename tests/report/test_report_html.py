"""The HTML page's structure without a browser: policy, payloads, layout, scenario sections."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from nndoctor._results import to_jsonable
from nndoctor.exceptions import InvalidParameterError
from nndoctor.report import Figure, Section, render_html, to_sections
from nndoctor.scenarios import SHIFT_SCENARIOS, cartoon_digits, soda_regions


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.meta: list[dict[str, str | None]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open = dict(attrs)
        if tag == "meta":
            self.meta.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.scripts.append((self._open, data))
            self._open = None


def _parse(page: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(page)
    return parser


def test_payloads_round_trip_and_nothing_executes() -> None:
    payload = {"x": "</script><script>alert(1)</script>", "y": [1.5, "nan"], "z": "a & b"}
    page = render_html("t", [Section("a", "ok", "", payload=payload), Section("b", "info", "v")])
    parsed = _parse(page)
    assert [attrs["type"] for attrs, _ in parsed.scripts] == ["application/json"] * 2
    assert json.loads(parsed.scripts[0][1]) == payload
    # a section without payload embeds itself
    assert json.loads(parsed.scripts[1][1]) == {
        "title": "b",
        "status": "info",
        "verdict": "v",
        "table": [],
    }
    csp = next(m for m in parsed.meta if m.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in (csp["content"] or "")
    assert "script-src" not in (csp["content"] or "")


def test_plot_sits_beside_the_verdict_and_counts_are_shown() -> None:
    fig = Figure("plot", "iVBORw0KGgo=", alt="alt <b>")
    page = render_html(
        "t",
        [Section("a", "warning", "bad", figures=(fig,)), Section("b", "warning", "worse")],
    )
    body = page[page.index('<section id="s1"') : page.index('<section id="s2"')]
    assert body.index('class="text"') < body.index("bad") < body.index('class="plots"')
    assert 'alt="alt &lt;b&gt;"' in body
    assert ">2 warning<" in page


def test_figure_must_be_base64() -> None:
    bad = Figure("plot", '"><script>alert(1)</script>')
    with pytest.raises(InvalidParameterError, match="base64"):
        render_html("t", [Section("a", "ok", "", figures=(bad,))])


@pytest.mark.parametrize("name", sorted(SHIFT_SCENARIOS))
def test_scenario_sections(name: str) -> None:
    kwargs = {"n_source": 120, "n_target": 100} if name != "drifting_stream" else {}
    data = SHIFT_SCENARIOS[name](**kwargs)
    (section,) = to_sections(data, figures=True)
    assert section.verdict == data.lesson
    assert section.figures[0].png_base64.startswith("iVBORw0K")
    assert {"item": "kind of shift", "value": data.kind} in section.table
    assert section.payload == data.to_dict()
    assert to_sections(data)[0].figures == ()


def test_scenario_json_leaves_the_tables_out() -> None:
    data = soda_regions(n_source=50, n_target=50)
    out = to_jsonable({"result": data})
    assert out["result"]["n_source"] == 50
    assert "source" not in out["result"]
    files = to_jsonable(cartoon_digits(n_source=20, n_target=20))
    assert files["kind"] == "covariate"


def test_rows_with_different_keys_line_up() -> None:
    rows = ({"a": 1, "b": 2}, {"b": 3, "c": "<4>"})
    page = render_html("t", [Section("s", "info", "", rows)])
    head = page[page.index("<thead>") : page.index("</thead>")]
    assert [h.split(">")[1] for h in head.split("<th scope")[1:]] == ["a</th", "b</th", "c</th"]
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    assert "<td>1</td><td>2</td><td></td>" in body
    assert "<td></td><td>3</td><td>&lt;4&gt;</td>" in body


def test_long_tables_show_their_head_and_the_rest_on_demand() -> None:
    rows = tuple({"feature": f"f{i}", "pvalue": i / 100} for i in range(40))
    page = render_html("t", [Section("s", "info", "", rows)])
    assert page.startswith("<!DOCTYPE html>")
    assert "<summary>all 40 rows</summary>" in page
    assert page.count("<td>f3</td>") == 2  # in the short table and in the full one
    assert page.count("<td>f39</td>") == 1  # only in the full one
    short = render_html("t", [Section("s", "info", "", rows[:5])])
    assert "rows</summary>" not in short


def test_probe_figure_puts_theory_and_measurement_on_one_axis() -> None:
    """The "Signal through the layers" curves are the table's gains: where theory and the
    measurement agree in the table they agree in the plot (the predicted backward *gain* was
    drawn on the *RMS* axis, 2.5-6x away from the measured RMS)."""
    import torch
    from torch import nn

    from nndoctor.report._stability import probe_series
    from nndoctor.stability import init_, probe

    layers: list[nn.Module] = []
    for _ in range(3):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(64, 10))
    init_(model, "kaiming_normal", generator=torch.Generator().manual_seed(0))
    report = probe(model, torch.randn(512, 64, generator=torch.Generator().manual_seed(1)))
    curves = {label: values for label, values, _ in probe_series(report)}
    for kind in ("forward", "backward"):
        measured_curve, theory_curve = (
            curves[f"{kind} gain (measured)"],
            curves[f"{kind} gain (theory)"],
        )
        pairs = [
            (m, t)
            for m, t in zip(measured_curve, theory_curve, strict=True)
            if t is not None and m is not None
        ]
        assert len(pairs) >= 5
        for measured, theory in pairs:
            assert 0.75 < theory / measured < 1.33, (kind, measured, theory)
    assert curves["backward gain (measured)"] == [r.backward_gain for r in report.called_layers]


def test_terminal_tables_fold_long_values_instead_of_cutting_them() -> None:
    """A value wider than its column wraps onto the next lines (it was cut with "…" when the
    output was piped at 80 columns)."""
    import io

    from rich.console import Console

    from nndoctor.report import print_sections

    name = "the_source_table_users_2024_final_v3.csv:customer_lifetime_value"
    out = io.StringIO()
    console = Console(file=out, width=40, no_color=True)
    print_sections([Section("Demo", "info", "", ({"column": name, "value": "1"},))], console)
    text = out.getvalue()
    assert "…" not in text
    cells = "".join(
        line.split("│")[1].strip() for line in text.splitlines() if line.count("│") >= 3
    )
    assert name in cells
