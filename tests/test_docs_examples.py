"""Every example in ``docs/*.md`` and ``README.md`` runs, and shows what it prints.

The convention (one test per page, parametrized by the page's name):

* **Code.** Every ```` ```python ```` block of a page runs, in the order of the page, in one
  namespace shared by the page (a page is a tutorial: later blocks use earlier names), in a
  fresh temporary working directory (blocks may write files), after seeding ``random``, NumPy's
  global generator and torch with 0, with ``MPLBACKEND=Agg``, on one thread (torch and BLAS:
  ``pytest -n 2`` runs two pages at once). A block whose first line starts with ``>>>`` is a
  doctest and is checked as one (``NORMALIZE_WHITESPACE``, ``ELLIPSIS``, and numbers compared
  to the digits shown, as below). Warnings are shown as a user sees them, one
  line ``Category: message`` in the block's output (the suite's "warnings are errors" filter
  does not apply to the docs).
* **Shown output.** A ```` ```text ```` block that follows a code block with nothing but blank
  lines between them is that block's output (after a ```` ```console ```` block: its last
  command's), and the printed output must match it: the two are
  compared token by token (words, numbers, punctuation; whitespace is ignored), ``...`` in the
  shown output stands for any text, and a number matches when it is the real value rounded to
  the digits shown (within half a unit of its last digit, or 1e-9 relative for long floats;
  integers exactly). A doc showing a stale number fails.
* **Commands.** In ```` ```console ```` blocks a command is a line starting with ``$ ``; in
  ```` ```bash ```` blocks every line is one (a trailing ``\\`` continues it). Every ``nndoctor``
  command runs through ``typer.testing.CliRunner`` against ``nndoctor.cli.app`` (the line split
  with ``shlex``), in the page's working directory, after the page's earlier blocks; it must exit
  with 0 (or the code an ``<!-- docs-test: exit-code N -->`` comment right before the block
  names). A pipe into ``python`` runs it on the command's output (``jq`` too, but its number
  format differs between versions: prefer ``python -c``). ``ls``,
  ``head``, ``sed`` and ``cat`` lines run as they are (they show the files a command wrote). The
  lines under a command up to the next ``$`` are its shown output: for ``nndoctor`` commands every
  word and number shown must occur in the real output (tables wrap with the terminal's width, so
  order is not compared; words cut with ``…`` are ignored); for the other commands the output is
  compared token by token as for code, numbers written exactly alike unless piped (``ls``,
  ``head``... show file contents).
  Other commands (``make``, ``pytest``, scripts of the repository) are shown, not run.
* **Not code.** Output, logs and file contents use ```` ```text ```` (or ``console`` /
  ``markdown``), never ```` ```python ```` or a bare fence holding a ``$ nndoctor`` line.
* **Exclusions.** ``<!-- docs-test: skip (reason) -->`` on the line right before a fence leaves
  that block out; the reason is required. Use it only for what cannot be made cheap or
  self-contained (a template for the user's own files).
"""

from __future__ import annotations

import contextlib
import doctest
import io
import random
import re
import shlex
import shutil
import subprocess
import sys
import traceback
import types
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import threadpoolctl
import torch
from typer.testing import CliRunner

from nndoctor.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<what>skip|exit-code)\b\s*(?P<arg>.*?)\s*-->\s*$")
_SHELL_TOOLS = {"ls", "head", "sed", "cat"}
_NOT_RUN = {"make", "pytest", "python", "pip"}


@dataclass
class Block:
    """One fenced block of a page."""

    lang: str
    line: int  # 1-based line of the block's first content line
    text: str
    skip: str | None = None
    exit_code: int = 0
    output: Block | None = None
    follows_blank: bool = field(default=False, repr=False)


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with their markers and shown outputs."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    last_end = -1  # index of the closing fence of the previous block
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : j]
        ]
        block = Block(lang, i + 2, "\n".join(body) + "\n")
        block.follows_blank = all(not lines[k].strip() for k in range(last_end + 1, i))
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = _MARKER.match(lines[k].strip()) if k >= 0 else None
        if marker and marker["what"] == "skip":
            reason = re.fullmatch(r"\((.*\S.*)\)", marker["arg"])
            assert reason, f"{path.name}:{i + 1}: write <!-- docs-test: skip (the reason) -->"
            block.skip = reason.group(1)
        elif marker:
            block.exit_code = int(marker["arg"])
        if (
            lang == "text"
            and blocks
            and blocks[-1].lang in ("python", "console")
            and block.follows_blank
        ):
            blocks[-1].output = block
        blocks.append(block)
        last_end = j
        i = j + 1
    return blocks


# ---------------------------------------------------------------------------------------------
# comparing shown with real output

_TOKEN = re.compile(
    r"(?P<gap>\.\.\.|…)|(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)|(?P<word>[^\W\d]+)|(?P<other>\S)"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(text)]


def _numbers_agree(shown: str, real: str) -> bool:
    a, b = float(shown), float(real)
    if a == b:
        return True
    if re.fullmatch(r"\d+", shown):
        return False
    mantissa, _, exponent = shown.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    unit = 10.0 ** (int(exponent or 0) - decimals)
    return abs(a - b) <= 0.5 * unit * (1 + 1e-9) or abs(a - b) <= 1e-9 * abs(a)


def _same(shown: tuple[str, str], real: tuple[str, str], exact: bool = False) -> bool:
    if shown[0] == "num" and real[0] == "num" and not exact:
        return _numbers_agree(shown[1], real[1])
    return shown == real


def _match_from(
    segment: list[tuple[str, str]], real: list[tuple[str, str]], start: int, exact: bool
) -> int:
    """First position >= start where ``segment`` matches ``real``; -1 if none."""
    for pos in range(start, len(real) - len(segment) + 1):
        window = real[pos : pos + len(segment)]
        if all(_same(s, r, exact) for s, r in zip(segment, window, strict=True)):
            return pos
    return -1


def output_mismatch(shown: str, real: str, *, exact: bool = False) -> str | None:
    """Token-by-token comparison; ``...`` in ``shown`` matches any text. None when they agree.

    ``exact``: numbers must be written alike too (file contents), not only agree in value.
    """
    segments: list[list[tuple[str, str]]] = [[]]
    for token in _tokens(shown):
        if token[0] == "gap":
            segments.append([])
        else:
            segments[-1].append(token)
    actual = _tokens(real)
    pos = 0
    for index, segment in enumerate(segments):
        if not segment:
            continue
        anchored = index == 0
        found = _match_from(segment, actual, pos, exact)
        if found < 0 or (anchored and found != pos):
            return f"shown text from {' '.join(t for _, t in segment[:12])!r} not found"
        pos = found + len(segment)
    if segments[-1] and pos != len(actual):
        return f"real output goes on: {' '.join(t for _, t in actual[pos : pos + 12])!r}"
    return None


def missing_words(shown: str, real: str) -> list[str]:
    """Words and numbers of ``shown`` absent from ``real`` (as a multiset; cut words ignored)."""
    tokens = _tokens(shown)
    wanted = [
        t
        for i, t in enumerate(tokens)
        if t[0] in ("num", "word") and not (i + 1 < len(tokens) and tokens[i + 1][1] == "…")
    ]
    have = Counter(t for t in _tokens(real) if t[0] == "word")
    numbers = [t[1] for t in _tokens(real) if t[0] == "num"]
    missing = []
    for kind, text in wanted:
        if kind == "word":
            if have[(kind, text)] > 0:
                have[(kind, text)] -= 1
            else:
                missing.append(text)
            continue
        hit = next((k for k, n in enumerate(numbers) if _numbers_agree(text, n)), None)
        if hit is None:
            missing.append(text)
        else:
            numbers.pop(hit)
    return missing


# ---------------------------------------------------------------------------------------------
# running a page


class _Fail(Exception):
    pass


class _Checker(doctest.OutputChecker):
    """doctest's comparison, or else the token comparison of shown output used for every block."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return super().check_output(want, got, optionflags) or output_mismatch(want, got) is None


def _run_python(block: Block, path: Path, namespace: dict[str, Any]) -> str:
    out = io.StringIO()

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        out.write(f"{category.__name__}: {message}\n")

    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("default")
        warnings.showwarning = show
        if block.text.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(
                block.text, namespace, path.name, str(path), block.line - 1
            )
            flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
            report = io.StringIO()
            runner = doctest.DocTestRunner(checker=_Checker(), optionflags=flags)
            runner.run(test, out=report.write, clear_globs=False)
            if runner.failures:
                raise _Fail(report.getvalue())
        else:
            try:
                exec(compile("\n" * (block.line - 1) + block.text, str(path), "exec"), namespace)
            except Exception:
                raise _Fail(traceback.format_exc(limit=-8)) from None
    return out.getvalue()


def _commands(block: Block) -> list[tuple[str, str, int]]:
    """(command, shown output, line) for each command of a console/bash block."""
    result: list[tuple[str, str, int]] = []
    lines = block.text.splitlines()
    k = 0
    console = block.lang == "console"
    while k < len(lines):
        line = lines[k]
        if console and not line.startswith("$ "):
            k += 1
            continue
        start = k
        command = line[2:] if console else line
        while command.rstrip().endswith("\\") and k + 1 < len(lines):
            k += 1
            command = command.rstrip()[:-1] + " " + lines[k].strip()
        k += 1
        shown = []
        while console and k < len(lines) and not lines[k].startswith("$ "):
            shown.append(lines[k])
            k += 1
        if command.strip() and not command.lstrip().startswith("#"):
            result.append((command.strip(), "\n".join(shown), block.line + start))
    if block.output is not None and result and not result[-1][1].strip():
        result[-1] = (result[-1][0], block.output.text, result[-1][2])
    return result


def _pipeline(command: str) -> list[list[str]]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    stages: list[list[str]] = [[]]
    for token in lexer:
        if token == "|":
            stages.append([])
        else:
            stages[-1].append(token)
    return stages


def _run_command(command: str, expected_code: int) -> str | None:
    """Run one shown command; its output, or None when the command is shown but not run."""
    stages = _pipeline(command)
    program = stages[0][0]
    if program == "nndoctor":
        result = CliRunner().invoke(app, stages[0][1:], catch_exceptions=True)
        piped = result.stdout  # a pipe gets stdout; the shown output is stdout and stderr
        if result.exit_code != expected_code:
            detail = (
                "".join(traceback.format_exception(result.exc_info[1])) if result.exc_info else ""
            )
            raise _Fail(
                f"exit code {result.exit_code}, expected {expected_code}\n"
                f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}\n{detail}"
            )
        output = result.stdout + result.stderr
    elif program in _SHELL_TOOLS:
        done = subprocess.run(stages[0], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise _Fail(f"exit code {done.returncode}: {done.stderr}")
        output = piped = done.stdout
    else:
        assert program in _NOT_RUN, f"unknown program {program!r}: run it, or add it to _NOT_RUN"
        return None
    for stage in stages[1:]:
        argv = [sys.executable, *stage[1:]] if stage[0] == "python" else stage
        if shutil.which(argv[0]) is None:
            raise _Fail(f"{argv[0]} is needed by a documented pipeline")
        done = subprocess.run(argv, input=piped, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise _Fail(f"{' '.join(stage)}: exit code {done.returncode}: {done.stderr}")
        output = piped = done.stdout
    return output


def run_page(path: Path) -> list[str]:
    """Run a page's examples; one line per failure (empty when everything passed)."""
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(path.name)
    module = types.ModuleType("__docs__")  # a real module: dataclasses and pickling look it up
    sys.modules[module.__name__] = module
    try:
        return _run_blocks(path, rel, module.__dict__)
    finally:
        del sys.modules[module.__name__]


def _run_blocks(path: Path, rel: Path, namespace: dict[str, Any]) -> list[str]:
    failures: list[str] = []
    for block in parse_blocks(path):
        where = f"{rel}:{block.line}"
        if block.skip is not None:
            continue
        if block.lang not in ("console", "bash") and re.search(r"^\$ nndoctor", block.text, re.M):
            failures.append(
                f"{where}: a `$ nndoctor` line in a ```{block.lang} block: use ```console"
            )
        if block.lang in ("py", "python3", "pycon", "ipython"):
            failures.append(f"{where}: ```{block.lang} is not run: write ```python")
        if block.lang == "python":
            try:
                printed = _run_python(block, path, namespace)
            except _Fail as err:
                failures.append(f"{where}: the example fails:\n{err}")
                break  # later blocks build on this one
            if block.output is not None:
                problem = output_mismatch(block.output.text, printed)
                if problem:
                    failures.append(
                        f"{where}: printed output differs from the shown output at "
                        f"{rel}:{block.output.line}: {problem}\n--- printed:\n{printed}"
                    )
        elif block.lang in ("console", "bash"):
            for command, shown, line in _commands(block):
                where = f"{rel}:{line}"
                try:
                    real = _run_command(command, block.exit_code)
                except _Fail as err:
                    failures.append(f"{where}: `{command}` fails: {err}")
                    continue
                if real is None or not shown.strip():
                    continue
                if command.startswith("nndoctor") and "|" not in command:
                    missing = missing_words(shown, real)
                    if missing:
                        failures.append(
                            f"{where}: `{command}`: shown words/numbers not in the real output: "
                            f"{missing[:20]}\n--- real:\n{real}"
                        )
                else:
                    problem = output_mismatch(shown, real, exact="|" not in command)
                    if problem:
                        failures.append(f"{where}: `{command}`: {problem}\n--- real:\n{real}")
    return failures


@pytest.fixture
def docs_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("NNDOCTOR_DEBUG", raising=False)
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the docs' code may use NumPy's global generator
    torch.manual_seed(0)
    printoptions = np.get_printoptions()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # pytest -n 2 runs two pages at once on two cores
    with threadpoolctl.threadpool_limits(1):
        yield tmp_path
    torch.set_num_threads(threads)
    np.set_printoptions(**printoptions)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_examples_run_and_show_their_output(page: Path, docs_environment: Path) -> None:
    failures = run_page(page)
    assert not failures, "\n\n".join(failures)


def test_markers_and_parser(tmp_path: Path) -> None:
    text = (
        "intro\n\n```python\nprint(1 + 1)\n```\n\n```text\n2\n```\n\n"
        "<!-- docs-test: skip (needs your own files) -->\n```console\n$ nndoctor x\n```\n"
    )
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    blocks = parse_blocks(path)
    assert [b.lang for b in blocks] == ["python", "text", "console"]
    assert blocks[0].output is blocks[1]
    assert blocks[0].line == 4
    assert blocks[2].skip == "needs your own files"


def test_output_comparison_catches_stale_numbers() -> None:
    assert output_mismatch("gain 0.0877 ok", "gain 0.0877 ok\n") is None
    assert output_mismatch("gain 0.0877 ok", "gain   0.08771 ok") is None
    assert output_mismatch("gain 0.0877 ok", "gain 0.0878 ok") is not None
    assert output_mismatch("gain 0.0838 ok", "gain 0.0877 ok") is not None
    assert output_mismatch("steps 3", "steps 4") is not None
    assert output_mismatch("a ... z", "a b c d z") is None
    assert output_mismatch("a b", "a b c") is not None
    assert output_mismatch("p 7.691033943285368e-06", "p 7.691033943285371e-06") is None
    assert output_mismatch("w 1.3333333333", "w 1.3333333334", exact=True) is not None
    assert missing_words("│ 0.311 │ DRIFT │ recommend_ini… │", "DRIFT x 0.311 recommend_init") == []
    assert missing_words("0.311 DRIFT", "0.312 drift") == ["0.311", "DRIFT"]


def test_a_page_with_stale_examples_fails_naming_the_lines(
    tmp_path: Path, docs_environment: Path
) -> None:
    page = tmp_path / "stale.md"
    page.write_text(
        "```python\nx = 2\nprint(x * 0.5)\n```\n\n```text\n1.5\n```\n\n"
        "```python\nprint(x)\n```\n\n```text\n2\n```\n\n"
        "```console\n$ nndoctor scenario list --no-such-option\n```\n\n"
        "<!-- docs-test: exit-code 2 -->\n"
        "```console\n$ nndoctor scenario list --no-such-option\n```\n\n"
        "<!-- docs-test: skip (shown, not run) -->\n```python\nraise RuntimeError\n```\n\n"
        "```\n$ nndoctor scenario list\n```\n",
        encoding="utf-8",
    )
    failures = run_page(page)
    assert len(failures) == 3, failures
    assert failures[0].startswith("stale.md:2: printed output differs")
    assert "shown output at stale.md:7" in failures[0]
    assert failures[1].startswith("stale.md:19: `nndoctor scenario list --no-such-option` fails")
    assert failures[2].startswith("stale.md:33: a `$ nndoctor` line in a ``` block")
