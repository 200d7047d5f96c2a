"""Headless Chromium driven over the DevTools protocol (websockets only), for the browser test.

The console renders into an xterm.js canvas, so the page's DOM holds no text: we read what the
browser *received* instead — the terminal output frames of the page's WebSocket, captured with
``Network.webSocketFrameReceived`` — and type with ``Input.insertText``/``Input.dispatchKeyEvent``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: Any = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.terminal_bytes = bytearray()
        self._reader: asyncio.Task[None] | None = None
        self.received = asyncio.Event()

    async def start(self) -> None:
        exe = chromium_path()
        assert exe, "chromium not installed"
        self.proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        for _ in range(300):  # Chromium writes the port file once it listens (bounded wait, ~30 s)
            if port_file.exists() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await connect(page["webSocketDebuggerUrl"], max_size=2**26)
        self._reader = asyncio.create_task(self._read())
        await self.call("Network.enable")
        await self.call("Page.enable")

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(msg.get("result"))
            elif msg.get("method") == "Network.webSocketFrameReceived":
                resp = msg["params"]["response"]
                if resp.get("opcode") == 2:  # binary: terminal output
                    self._on_packet(base64.b64decode(resp["payloadData"]))
                else:
                    self.terminal_bytes += resp.get("payloadData", "").encode()
                self.received.set()

    def _on_packet(self, data: bytes) -> None:
        # textual-serve forwards the app's terminal output as raw binary frames.
        self.terminal_bytes += data

    def screen_text(self) -> str:
        return ANSI.sub(b"", bytes(self.terminal_bytes)).decode("utf-8", "replace")

    async def call(self, method: str, **params: Any) -> Any:
        mid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        await self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        return await asyncio.wait_for(fut, 30)

    async def navigate(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def wait_text(self, needle: str, timeout: float = 30.0) -> str:
        async def wait() -> str:
            while needle not in self.screen_text():
                self.received.clear()
                await self.received.wait()
            return self.screen_text()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            tail = self.screen_text()[-1500:]
            raise AssertionError(f"{needle!r} never reached the page; last output:\n{tail}") from None

    async def key(self, key: str, code: str, key_code: int, modifiers: int = 0, text: str = "") -> None:
        for kind in ("keyDown", "keyUp"):
            params: dict[str, Any] = {
                "type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers,
            }
            if text and kind == "keyDown":
                params["text"] = text
            await self.call("Input.dispatchKeyEvent", **params)

    async def screenshot(self, path: Path) -> None:
        data = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
