"""A self-contained HTML report: one file, plots embedded, nothing fetched from the network."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import markupsafe

from nndoctor._io import write_text_atomic
from nndoctor._results import dumps
from nndoctor.report._section import Section

__all__ = ["render_html", "write_html"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.meta { color: #59636e; font-size: .9rem; }
nav ul { columns: 2; } nav a { text-decoration: none; }
section { border-top: 1px solid #d1d9e0; padding-top: .5rem; }
.verdict { padding: .5rem .75rem; border-radius: 6px; margin: .5rem 0; }
.status-ok { background: #dafbe1; } .status-info { background: #ddf4ff; }
.status-warning { background: #fff8c5; } .status-error { background: #ffebe9; }
.badge { font-weight: 600; text-transform: uppercase; font-size: .75rem; margin-right: .5rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border: 1px solid #d1d9e0; padding: .25rem .5rem; text-align: left; }
th { background: #f6f8fa; }
figure { display: inline-block; margin: .5rem; } figure img { max-width: 100%; }
figcaption { font-size: .85rem; color: #59636e; }
details pre { background: #f6f8fa; padding: .5rem; overflow: auto; max-height: 24rem; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">nndoctor {{ version }} · generated {{ generated }}</p>
<nav><ul>
{% for s in sections %}<li><a href="#s{{ loop.index }}">{{ s.title }}</a> — {{ s.status }}</li>
{% endfor %}</ul></nav>
{% for s in sections %}
<section id="s{{ loop.index }}" class="report-section">
<h2>{{ s.title }}</h2>
{% if s.verdict %}<div class="verdict status-{{ s.status }}">
<span class="badge">{{ s.status }}</span>{{ s.verdict }}</div>{% endif %}
{% for f in s.figures %}<figure>
<img src="data:image/png;base64,{{ f.png_base64 }}" alt="{{ f.alt or f.title }}">
<figcaption>{{ f.title }}</figcaption></figure>
{% endfor %}
{% if s.table %}<table>
<thead><tr>{% for k in s.table[0].keys() %}<th>{{ k }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in s.table %}<tr>{% for v in row.values() %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endif %}
{% if s.payload is not none %}<details><summary>JSON</summary>
<script type="application/json" class="payload">{{ payload_json[loop.index0] }}</script>
<pre>{{ payload_text[loop.index0] }}</pre></details>{% endif %}
</section>
{% endfor %}
</body>
</html>
"""


def _script_safe(text: str) -> str:
    # JSON inside <script> must not be able to close the element or open a comment.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(title: str, sections: Sequence[Section]) -> str:
    """Render sections as one self-contained HTML page (every user string escaped).

    Examples
    --------
    >>> from nndoctor.report import Section
    >>> page = render_html("t", [Section("<script>alert(1)</script>", "info", "v")])
    >>> "<script>alert(1)</script>" in page
    False
    """
    from nndoctor import __version__

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_TEMPLATE)
    texts = [dumps(s.payload) if s.payload is not None else "" for s in sections]
    return template.render(
        title=title,
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sections=list(sections),
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
