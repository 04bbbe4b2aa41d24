"""A self-contained HTML report: one file, plots embedded, nothing fetched from the network."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import markupsafe

from nndoctor._io import write_text_atomic
from nndoctor._results import dumps
from nndoctor.exceptions import InvalidParameterError
from nndoctor.report._section import Section, check_sections

__all__ = ["render_html", "write_html"]

_LONG_TABLE = 25  # rows: a longer table shows its first _SHORT_TABLE rows, the rest on demand
_SHORT_TABLE = 15
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def check_embeddable(sections: Sequence[Section]) -> Sequence[Section]:
    """:func:`check_sections`, and every figure's PNG is base64 text (safe to embed in a page
    or a notebook cell): what both HTML renderers check first."""
    sections = check_sections(sections)
    for s in sections:
        for f in s.figures:
            if not _BASE64.fullmatch(f.png_base64):
                raise InvalidParameterError(
                    f"figure {f.title!r} is not base64 text; encode it with figure_to_png_base64"
                )
    return sections


# Nothing on the page may be fetched or run: the policy allows inline styles and data: images only.
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)

_TEMPLATE = """{% macro table(cols, rows) -%}
<div class="table-wrap"><table>
<thead><tr>{% for k in cols %}<th scope="col">{{ k }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr>{% for k in cols %}<td>{{ row.get(k, "") }}</td>
{%- endfor %}</tr>
{% endfor %}</tbody></table></div>
{%- endmacro -%}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="nndoctor {{ version }}">
<title>{{ title }}</title>
<style>
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 80rem; padding: 0 1rem; color: var(--fg); line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; } h2 { font-size: 1.2rem; margin: .25rem 0 .5rem; }
.meta { color: var(--muted); font-size: .9rem; margin-top: 0; }
.counts span { display: inline-block; margin-right: .5rem; padding: .1rem .5rem;
               border-radius: 1rem; font-size: .85rem; }
nav ol { columns: 2; padding-left: 1.5rem; } nav a { text-decoration: none; }
section { border-top: 1px solid var(--line); padding: .75rem 0 1rem; }
.body { display: flex; flex-wrap: wrap; gap: 1rem 1.5rem; align-items: flex-start; }
.text { flex: 1 1 24rem; min-width: 0; }
.plots { flex: 0 1 30rem; min-width: 0; }
.verdict { padding: .5rem .75rem; border-radius: 6px; margin: 0 0 .5rem; }
.status-ok { background: #dafbe1; } .status-info { background: #ddf4ff; }
.status-warning { background: #fff8c5; } .status-error { background: #ffebe9; }
.badge { font-weight: 600; text-transform: uppercase; font-size: .75rem; margin-right: .5rem; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left;
         vertical-align: top; overflow-wrap: break-word; }
th { background: var(--soft); }
figure { margin: 0 0 .75rem; } figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .85rem; color: var(--muted); }
details { margin-top: .5rem; } summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
details pre { background: var(--soft); padding: .5rem; overflow: auto; max-height: 24rem;
              font-size: .8rem; }
@media print { details { display: none; } section { break-inside: avoid; } }
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p class="meta">nndoctor {{ version }} · generated {{ generated }} ·
{{ sections|length }} section(s)</p>
<p class="counts">{% for status, n in counts %}
<span class="status-{{ status }}">{{ n }} {{ status }}</span>{% endfor %}{{ counted }}</p>
</header>
<nav aria-label="sections"><ol>
{% for s in sections %}<li><a href="#s{{ loop.index }}">{{ s.title }}</a>
<span class="badge">{{ s.status }}</span></li>
{% endfor %}</ol></nav>
<main>
{% for s in sections %}
<section id="s{{ loop.index }}" class="report-section" data-status="{{ s.status }}">
{% set cols = columns[loop.index0] %}
<h2>{{ s.title }}</h2>
<div class="body">
<div class="text">
{% if s.verdict %}<div class="verdict status-{{ s.status }}">
<span class="badge">{{ s.status }}</span>{{ s.verdict }}</div>{% endif %}
{% if s.table %}{% if s.table|length > long_table %}
{{ table(cols, s.table[:short_table]) }}
<details class="more"><summary>all {{ s.table|length }} rows</summary>
{{ table(cols, s.table) }}</details>
{% else %}{{ table(cols, s.table) }}{% endif %}{% endif %}
<details><summary>JSON</summary>
<script type="application/json" class="payload" data-section="s{{ loop.index }}">
{{- payload_json[loop.index0] -}}
</script>
<pre>{{ payload_text[loop.index0] }}</pre></details>
</div>
{% if s.figures %}<div class="plots">
{% for f in s.figures %}<figure>
<img src="data:image/png;base64,{{ f.png_base64 }}" alt="{{ f.alt or f.title }}">
<figcaption>{{ f.title }}</figcaption></figure>
{% endfor %}</div>{% endif %}
</div>
</section>
{% endfor %}
</main>
</body>
</html>
"""


def _script_safe(text: str) -> str:
    # JSON inside <script> must not be able to close the element or open a comment.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _counted(sections: Sequence[Section]) -> tuple[list[str], str]:
    """What the header counts: the findings of a report that opens with a summary of findings
    (a table with a ``severity`` column, e.g. the checkup's), so the header and the summary
    agree; otherwise the sections."""
    first = sections[0].table if sections else ()
    if first and all("severity" in row for row in first):
        return [str(row["severity"]) for row in first], " finding(s) in the summary"
    return [s.status for s in sections], " section(s)"


def render_html(title: str, sections: Sequence[Section]) -> str:
    """Render sections as one self-contained HTML page (every user string escaped).

    Each section shows its verdict and table with its plots beside them, and embeds its JSON
    twice: in a ``<script type="application/json" class="payload">`` element for programs and
    in a collapsed ``<pre>`` for people. A section without a payload embeds its own title,
    status, verdict and table. A Content-Security-Policy forbids every script and every fetch:
    the page works offline and nothing in it can run.

    Examples
    --------
    >>> from nndoctor.report import Section
    >>> page = render_html("t", [Section("<script>alert(1)</script>", "info", "v")])
    >>> "<script>alert(1)</script>" in page
    False
    >>> page.count('class="payload"')
    1
    """
    from nndoctor import __version__

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_TEMPLATE)
    sections = check_embeddable(sections)
    texts = [
        dumps(
            s.payload
            if s.payload is not None
            else {"title": s.title, "status": s.status, "verdict": s.verdict, "table": s.table}
        )
        for s in sections
    ]
    order = ("error", "warning", "info", "ok")
    statuses, counted = _counted(sections)
    counts = [(st, n) for st in order if (n := statuses.count(st))]
    return template.render(
        title=title,
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        csp=_CSP,
        counts=counts,
        counted=counted,
        sections=list(sections),
        long_table=_LONG_TABLE,
        short_table=_SHORT_TABLE,
        columns=[list(dict.fromkeys(k for row in s.table for k in row)) for s in sections],
        payload_json=[markupsafe.Markup(_script_safe(t)) for t in texts],
        payload_text=texts,
    )


def write_html(path: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """Render and write the page atomically (a failed run leaves no half-written report).

    Examples
    --------
    >>> import tempfile, os
    >>> from nndoctor.report import Section
    >>> p = write_html(os.path.join(tempfile.mkdtemp(), "r.html"), "t", [Section("a", "ok", "")])
    >>> p.read_text().startswith("<!DOCTYPE html>")
    True
    """
    return write_text_atomic(path, render_html(title, sections))
