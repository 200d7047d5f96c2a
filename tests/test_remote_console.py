"""The remote console against a real headless desk subprocess: the same app, driven by its Pilot."""

from __future__ import annotations

import json
import time

import pytest

from console.remote import RemoteConsoleApp
from engines.config import load_config
from engines.remote.client import LinkState
from tests.desk_process import DeskProcess


@pytest.fixture
def desk(tmp_path):
    d = DeskProcess(tmp_path)
    tokens_file = tmp_path / "demo" / "remote-tokens.json"
    d.wait_log(lambda r: r.get("msg") == "desk running", timeout=60)
    assert tokens_file.exists()
    d.tokens = json.loads(tokens_file.read_text())
    yield d
    d.kill()


def token(desk: DeskProcess, role: str) -> str:
    return next(t["token"] for t in desk.tokens["tokens"] if t["role"] == role)


async def until(pilot, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause(0.05)


def app_for(desk: DeskProcess, role: str, tmp_path) -> RemoteConsoleApp:
    config = load_config()
    return RemoteConsoleApp(config, desk.tokens["url"], token(desk, role))


async def test_attached_console_mirrors_the_desk_and_its_kill_halts_the_desk(desk, tmp_path):
    app = app_for(desk, "operator", tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.link is LinkState.LIVE and app.model.prices and app.model.grids)
        # state matches: the desk's own status, asked over the channel, against the console's model
        status = await app.client.command("status")
        assert app.model.desk_name == status["desk"] == "demo"
        assert set(app.model.symbols) == {"BTC-USD", "ETH-USD"}
        desk_open = status["engines"]["matching"]["open_orders"]
        await until(pilot, lambda: app.model.open_count() == desk_open)
        assert desk_open > 0
        # kill from the remote console: chord, scope (whole desk), confirm
        await pilot.press("ctrl+k")
        await pilot.press("enter")
        await pilot.press("y")
        halted = desk.find_event(lambda e: e["event"] == "TradingStateChanged" and e["scope"] == "desk")
        assert halted["state"] == "halted" and halted["source"] == "remote"
        action = desk.find_event(lambda e: e["event"] == "KillSwitchAction" and e["action"] == "kill")
        assert (action["source"], action["actor"], action["scope"]) == ("remote", "local-operator", "desk")
        done = desk.find_event(lambda e: e["event"] == "KillProgress" and e["done"])
        # bots keep quoting until the kill lands, so the count may differ from desk_open by a requote
        assert done["confirmed"] == done["requested"] > 0 and done["pending"] == []
        await until(pilot, lambda: app.model.desk_state() == "halted" and app.model.open_count() == 0)
        status = await app.client.command("status")
        assert status["engines"]["matching"]["open_orders"] == 0


async def test_viewer_console_cannot_kill(desk, tmp_path):
    app = app_for(desk, "viewer", tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.link is LinkState.LIVE and app.model.grids)
        await pilot.press("ctrl+k")
        await pilot.press("enter")
        await pilot.press("y")
        await until(pilot, lambda: any("forbidden" in n.message for n in app._notifications))
        status = await app.client.command("status")
        assert app.model.desk_state() == "active"
        assert status["engines"]["matching"]["open_orders"] > 0


async def test_dropped_connection_is_shown_then_reconnects_and_resnapshots(desk, tmp_path):
    app = app_for(desk, "operator", tmp_path)
    links: list[LinkState] = []
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.link is LinkState.LIVE and app.client.snapshots == 1)
        original = app._on_link

        def record(state, detail):
            links.append(state)
            original(state, detail)

        app.client.on_link = record
        await app.client.drop()
        await until(pilot, lambda: LinkState.DISCONNECTED in links)
        assert app.main.has_class("-stale")
        assert "DISCONNECTED" in app.sub_title
        app.refresh_panels()
        assert str(app.status_bar.render()).startswith("⚠ DISCONNECTED")
        await until(pilot, lambda: app.link is LinkState.LIVE and app.client.snapshots == 2)
        assert not app.main.has_class("-stale")
        assert app.client.connects == 2 and app.model.prices
