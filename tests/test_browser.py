"""`opdesk web` in headless Chromium: the page attaches to the one running headless desk, shows it,
and the kill chord typed into the page halts the desk."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.browser import Browser, chromium_path
from tests.desk_process import DeskProcess

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed (.ci/system-deps)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def desk(tmp_path):
    d = DeskProcess(tmp_path / "desk")
    d.wait_log(lambda r: r.get("msg") == "desk running", timeout=60)
    d.tokens = json.loads((tmp_path / "desk" / "demo" / "remote-tokens.json").read_text())
    yield d
    d.kill()


@pytest.fixture
def web(desk, tmp_path):
    port = free_port()
    operator = next(t["token"] for t in desk.tokens["tokens"] if t["role"] == "operator")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPDESK_")}
    env.update({"OPDESK_TOKEN": operator, "OPDESK_DESK__DATA_DIR": str(tmp_path / "web")})
    proc = subprocess.Popen(
        [sys.executable, "-m", "opdesk", "web", desk.tokens["url"], "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    deadline = time.monotonic() + 30
    while True:  # wait until the web server accepts connections (bounded)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"opdesk web did not start: {proc.stdout.read() if proc.stdout else ''}") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


async def test_browser_console_shows_the_desk_and_kills_it(desk, web, tmp_path):
    browser = Browser(tmp_path / "chromium")
    await browser.start()
    try:
        await browser.navigate(web)
        await browser.wait_text("opdesk · demo", timeout=60)
        await browser.wait_text("Grid · grid-eth", timeout=30)
        # one desk: the tab attached to the running desk rather than starting engines of its own
        desk.wait_log(lambda r: r.get("msg") == "remote console attached: local-operator (operator)")
        await browser.call("Input.dispatchMouseEvent", type="mousePressed", x=300, y=300, button="left", clickCount=1)
        await browser.call("Input.dispatchMouseEvent", type="mouseReleased", x=300, y=300, button="left", clickCount=1)
        await browser.key("k", "KeyK", 75, modifiers=2)  # ctrl+k: the kill chord
        await browser.wait_text("what do you want to halt?")
        await browser.key("Enter", "Enter", 13, text="\r")
        await browser.wait_text("no new orders will be accepted")
        await browser.key("y", "KeyY", 89, text="y")
        halted = desk.find_event(lambda e: e["event"] == "TradingStateChanged" and e["scope"] == "desk")
        assert halted["state"] == "halted" and halted["source"] == "remote"
        action = desk.find_event(lambda e: e["event"] == "KillSwitchAction" and e["action"] == "kill")
        assert (action["source"], action["actor"], action["scope"]) == ("remote", "local-operator", "desk")
        await browser.wait_text("HALTED", timeout=30)
        await browser.screenshot(tmp_path / "browser.png")
    finally:
        await browser.close()
