"""Drive a headless Chromium over the DevTools protocol: load a page, read its console, shoot it.

Used by the report's browser tests and by ``scripts/screenshot_report.py``. Standard library
only: the DevTools websocket is spoken by a small RFC 6455 client below, on 127.0.0.1, to a
browser started with a throw-away profile and every background network feature switched off.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nndoctor.exceptions import MissingDependencyError, NNDoctorError

__all__ = ["BrowserError", "PageResult", "find_chromium", "load_page"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-crash-reporter",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


# where the page's content ends (the layout's content size is at least the viewport's height)
_BODY_BOTTOM = (
    "Math.ceil(document.body.getBoundingClientRect().bottom"
    " + parseFloat(getComputedStyle(document.body).marginBottom || '0') + window.scrollY)"
)


class BrowserError(NNDoctorError, RuntimeError):
    """The browser could not be started or did not answer."""


@dataclass(frozen=True, slots=True)
class PageResult:
    """What loading a page produced.

    Attributes
    ----------
    console_errors : tuple of str
        Console errors and warnings of level error, uncaught exceptions, failed loads and
        policy violations, in the order they came.
    dialogs : tuple of str
        Messages of any ``alert``/``confirm``/``prompt`` the page opened (dismissed at once).
    value : Any
        The value of ``expression`` evaluated after the load event (``None`` without one).
    screenshot_png : bytes or None
        A PNG of the whole page, when asked for.
    """

    console_errors: tuple[str, ...]
    dialogs: tuple[str, ...]
    value: Any
    screenshot_png: bytes | None


def find_chromium() -> str | None:
    """The Chromium executable: ``$NNDOCTOR_CHROMIUM``, else the first of the usual names."""
    explicit = os.environ.get("NNDOCTOR_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _WebSocket:
    """A minimal RFC 6455 client (text frames, client masking, ping/pong, fragmentation)."""

    def __init__(self, url: str, timeout: float) -> None:
        if not url.startswith("ws://"):
            raise BrowserError(f"DevTools address {url!r} is not a ws:// URL")
        hostport, _, path = url[len("ws://") :].partition("/")
        host, _, port = hostport.rpartition(":")
        self._sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode("ascii"))
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise BrowserError("the browser closed the DevTools connection during handshake")
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise BrowserError(f"DevTools handshake refused: {status.decode(errors='replace')}")

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self._sock.recv(max(65536, n - len(self._buffer)))
            if not chunk:
                raise BrowserError("the browser closed the DevTools connection")
            self._buffer += chunk
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            fin, opcode = b0 & 0x80, b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise BrowserError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            message += payload
            if fin:
                return message.decode("utf-8")

    def settimeout(self, timeout: float) -> None:
        self._sock.settimeout(max(timeout, 0.01))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, b"")
        self._sock.close()


class _DevTools:
    """Commands with ids over one browser-level connection (flattened sessions); events kept."""

    def __init__(self, ws: _WebSocket, deadline: float) -> None:
        self._ws = ws
        self._next = 0
        self._deadline = deadline
        self.events: list[dict[str, Any]] = []

    def _receive(self) -> dict[str, Any]:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise BrowserError("the browser did not answer in time")
        self._ws.settimeout(left)
        try:
            message: dict[str, Any] = json.loads(self._ws.recv())
        except TimeoutError as err:
            raise BrowserError("the browser did not answer in time") from err
        return message

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None) -> dict[str, Any]:  # fmt: skip
        self._next += 1
        ident = self._next
        request: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            request["sessionId"] = session
        self._ws.send(json.dumps(request))
        while True:
            message = self._receive()
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._on_event(message, session)

    def _on_event(self, message: dict[str, Any], session: str | None) -> None:
        self.events.append(message)
        if message["method"] == "Page.javascriptDialogOpening" and session is not None:
            # answer from a fresh id without waiting: the page is blocked until it is dismissed
            self._next += 1
            self._ws.send(
                json.dumps(
                    {
                        "id": self._next,
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": False},
                        "sessionId": session,
                    }
                )
            )

    def wait_for(self, method: str, session: str) -> None:
        if any(e["method"] == method for e in self.events):
            return
        while True:
            message = self._receive()
            if "method" in message:
                self._on_event(message, session)
                if message["method"] == method:
                    return


def _console_errors(events: list[dict[str, Any]]) -> tuple[str, ...]:
    errors: list[str] = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            errors.append(str(exception.get("description") or details.get("text", "exception")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')}")
    return tuple(errors)


@contextlib.contextmanager
def _browser(executable: str, timeout: float) -> Iterator[tuple[_DevTools, float]]:
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="nndoctor-chromium-") as profile:
        log_path = Path(profile) / "chromium.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [executable, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise BrowserError(
                        f"{executable} did not start its DevTools server "
                        f"(exit code {proc.poll()}); its log ends with:\n{tail}"
                    )
                time.sleep(0.05)
            port, path = port_file.read_text().splitlines()[:2]
            ws = _WebSocket(f"ws://127.0.0.1:{port}{path}", timeout)
            try:
                yield _DevTools(ws, deadline), deadline
            finally:
                with contextlib.suppress(BrowserError, OSError):
                    ws.send(json.dumps({"id": 10**9, "method": "Browser.close"}))
                ws.close()
        finally:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def load_page(
    path: str | Path,
    *,
    expression: str | None = None,
    screenshot: bool = False,
    width: int = 1280,
    height: int = 900,
    scale: float = 1.0,
    max_height: int | None = None,
    timeout: float = 60.0,
) -> PageResult:
    """Open a local HTML file in headless Chromium and report what happened.

    Parameters
    ----------
    path : path
        The HTML file.
    expression : str, optional
        JavaScript evaluated after the load event; its value is returned (JSON types).
    screenshot : bool
        Also capture the whole page (not just the viewport) as a PNG.
    width, height : int
        The viewport in CSS pixels.
    scale : float
        Device pixels per CSS pixel of the screenshot (2 for a sharp image on a README).
    max_height : int, optional
        Cut the screenshot at this many CSS pixels from the top.
    timeout : float
        Seconds for everything, start-up included.

    Raises
    ------
    MissingDependencyError
        When no Chromium is installed (``apt-get install chromium``, or ``make browser``).
    BrowserError
        When the browser does not start or answer in time.
    """
    executable = find_chromium()
    if executable is None:
        raise MissingDependencyError(
            "no Chromium found (looked for $NNDOCTOR_CHROMIUM, "
            + ", ".join(_CANDIDATES)
            + "); install it with `apt-get install chromium` or `make browser`"
        )
    url = Path(path).resolve().as_uri()
    with _browser(executable, timeout) as (cdp, _):
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            cdp.call(domain, session=session)
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False},
            session=session,
        )
        cdp.events.clear()
        cdp.call("Page.navigate", {"url": url}, session=session)
        cdp.wait_for("Page.loadEventFired", session)
        value = None
        if expression is not None:
            answer = cdp.call(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True, "awaitPromise": True},
                session=session,
            )
            if "exceptionDetails" in answer:
                raise BrowserError(f"the expression failed: {answer['exceptionDetails']}")
            value = answer.get("result", {}).get("value")
        png = None
        if screenshot:
            metrics = cdp.call("Page.getLayoutMetrics", session=session)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            bottom = cdp.call(
                "Runtime.evaluate",
                {"expression": _BODY_BOTTOM, "returnByValue": True},
                session=session,
            )
            content_height = int(bottom.get("result", {}).get("value") or size["height"])
            shot = cdp.call(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": max(width, int(size["width"])),
                        "height": min(content_height, max_height or content_height),
                        "scale": 1,
                    },
                },
                session=session,
            )
            png = base64.b64decode(shot["data"])
        dialogs = tuple(
            str(e.get("params", {}).get("message", ""))
            for e in cdp.events
            if e["method"] == "Page.javascriptDialogOpening"
        )
        return PageResult(_console_errors(cdp.events), dialogs, value, png)
