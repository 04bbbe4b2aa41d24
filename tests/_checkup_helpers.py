"""One verdict everywhere: the checkup's JSON summary, HTML header, badges and sections agree."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from typing import Any

_RANK = {"ok": 0, "info": 0, "warning": 1, "error": 2}


def check_one_verdict(stdout: str, page: str) -> list[dict[str, Any]]:
    """Assert that the report agrees with the JSON; return the JSON's summary rows.

    - the header counts what the summary counts (not the sections);
    - the summary section's badge is the worst finding, its table the JSON's rows;
    - a section named after a finding ("soda_regions: ...") is never more alarming than it;
    - no section of a stage is more alarming than the stage's worst finding.
    """
    payload = json.loads(stdout)
    rows = [r for s in payload["stages"] for r in s["summary"]]
    header = re.search(r'<p class="counts">(.*?)</p>', page, re.S)
    assert header is not None
    counts = {st: int(n) for n, st in re.findall(r">(\d+) (\w+)</span>", header.group(1))}
    assert counts == dict(Counter(r["severity"] for r in rows)), (counts, rows)
    sections = re.findall(
        r'<section id="s\d+" class="report-section" data-status="(\w+)">\s*<h2>(.*?)</h2>', page
    )
    titles = [(st, html.unescape(t)) for st, t in sections]
    worst = max(
        (r["severity"] for r in rows), key=lambda s: ("ok", "info", "warning", "error").index(s)
    )
    assert titles[0] == (worst, "Checkup summary")
    for status, title in titles[1:]:
        named = [
            r
            for r in rows
            if ":" in r["finding"] and title.startswith(r["finding"].split(":")[0] + ":")
        ]
        for r in named:
            assert _RANK[status] <= _RANK[r["severity"]], (title, status, r)
        assert _RANK[status] <= _RANK[worst], (title, status)
    # the badges in the navigation are the sections' statuses
    nav = re.findall(r'<li><a href="#s\d+">.*?</a>\s*<span class="badge">(\w+)</span>', page, re.S)
    assert nav == [st for st, _ in titles]
    return rows
