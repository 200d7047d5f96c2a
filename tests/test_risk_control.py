"""The control API (in-process, real socket) and ``opdesk kill|rearm|status`` against a real headless
desk subprocess, including a wrong token and SIGUSR1."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import httpx

from engines.risk.events import TradingState
from tests.desk_process import DeskProcess
from tests.risk_venue import make_desk, order

NO_RULES = {"limits": {}, "rules": {"order_storm": None, "stale_market_data": None}}


class _Bot:
    def __init__(self) -> None:
        self.state = "quoting"

    def pause(self) -> None:
        self.state = "paused"

    def resume(self) -> None:
        self.state = "quoting"

    def status(self) -> dict[str, str]:
        return {"state": self.state}


async def test_control_api_auth_kill_rearm_bots_and_cancel_all(tmp_path, monkeypatch):
    monkeypatch.setenv("OPDESK_CONTROL__PORT", "0")
    desk, _ = make_desk(
        tmp_path, risk=NO_RULES, builders=("engines.risk.service:build", "engines.control.service:build")
    )
    desk.services["bots"] = {"mm-btc": _Bot()}
    await desk.start()
    try:
        address = json.loads((tmp_path / "control.json").read_text())
        token_file = tmp_path / "control.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert address["url"] == f"http://127.0.0.1:{address['port']}" and address["pid"] == os.getpid()
        ok = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=address["url"]) as c:
            r = await c.get("/status")
            assert r.status_code == 401 and r.json()["error"].startswith("missing bearer token")
            assert r.headers["www-authenticate"] == "Bearer"
            r = await c.post("/kill", json={"reason": "x"}, headers={"Authorization": "Bearer nope"})
            assert (r.status_code, r.json()) == (401, {"error": "wrong token"})
            assert desk.services["risk"].state("desk") is TradingState.ACTIVE

            await desk.router.submit(order(client_id="a"))
            await desk.router.submit(order(symbol="ETH-USD", price=60_000, client_id="b"))
            r = await c.post("/cancel-all", json={"symbol": "ETH-USD"}, headers=ok)
            assert r.status_code == 200
            assert [x["client_id"] for x in r.json()["canceled"]] == ["b"]

            r = await c.post(
                "/kill",
                json={"scope": "bot:mm-btc", "reason": "api test", "source": "cli", "actor": "tester"},
                headers=ok,
            )
            assert r.status_code == 200
            body = r.json()
            assert (body["scope"], body["requested"], body["confirmed"], body["pending"]) == (
                "bot:mm-btc",
                1,
                1,
                [],
            )
            r = await c.post("/kill", json={"scope": "venue:x", "reason": "bad"}, headers=ok)
            assert r.status_code == 400 and "bad scope" in r.json()["error"]
            r = await c.post("/kill", json={"scope": "desk"}, headers=ok)
            assert r.status_code == 400 and "reason" in r.json()["error"]

            r = await c.post("/bots/mm-btc/pause", headers=ok)
            assert r.json() == {"bot": "mm-btc", "action": "pause", "status": {"state": "paused"}}
            r = await c.post("/bots/nobot/pause", headers=ok)
            assert r.status_code == 404 and r.json()["error"] == "no bot named 'nobot' (known: mm-btc)"

            st = (await c.get("/status", headers=ok)).json()
            assert st["states"] == {"bot:mm-btc": "halted"} and st["desk_state"] == "active"
            assert st["bots"] == {"mm-btc": {"state": "paused"}}
            r = await c.post(
                "/rearm", json={"scope": "bot:mm-btc", "reason": "ok", "state": "reducing"}, headers=ok
            )
            assert r.json() == {
                "scope": "bot:mm-btc",
                "state": "reducing",
                "previous": "halted",
                "pending": [],
            }
        rows = await desk.services["risk"].store.audit_rows()
        assert [(a["action"], a["scope"], a["source"], a["actor"]) for a in rows] == [
            ("kill", "bot:mm-btc", "cli", "tester"),
            ("rearm", "bot:mm-btc", "api", rows[1]["actor"]),
        ]
        assert rows[1]["actor"].startswith("127.0.0.1:")
    finally:
        await desk.stop()
    assert not (tmp_path / "control.json").exists()


def _opdesk(data_dir, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPDESK_")}
    env["OPDESK_DESK__DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "opdesk", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_opdesk_kill_rearm_status_against_a_headless_desk_and_sigusr1(tmp_path):
    desk = DeskProcess(tmp_path)
    try:
        desk.wait_log(lambda r: r.get("msg") == "control API listening")
        desk.wait_log(lambda r: r.get("msg") == "desk running")

        bad = _opdesk(tmp_path, "kill", "--reason", "should not work", "--token", "wrong-token")
        assert bad.returncode == 1
        assert bad.stderr.strip() == "opdesk: control API refused: wrong token"

        st = _opdesk(tmp_path, "status")
        assert st.returncode == 0, st.stderr
        assert st.stdout.startswith(f"desk demo (pid {desk.proc.pid}): ACTIVE")

        killed = _opdesk(tmp_path, "kill", "--reason", "test kill from the CLI")
        assert killed.returncode == 0, killed.stderr
        assert killed.stdout.startswith("KILL desk: HALTED in ")
        ev = desk.wait_event(lambda e: e["event"] == "KillSwitchAction")
        assert (ev["action"], ev["scope"], ev["source"], ev["reason"]) == (
            "kill",
            "desk",
            "cli",
            "test kill from the CLI",
        )
        desk.wait_event(lambda e: e["event"] == "KillProgress" and e["scope"] == "desk" and e["done"])
        st = _opdesk(tmp_path, "status")
        assert "desk demo" in st.stdout and ": HALTED" in st.stdout.splitlines()[0]

        re = _opdesk(tmp_path, "rearm", "--reason", "all clear")
        assert re.returncode == 0 and re.stdout.strip() == "REARM desk: HALTED -> ACTIVE"
        desk.wait_event(lambda e: e["event"] == "TradingStateChanged" and e["state"] == "active")

        desk.signal(signal.SIGUSR1)
        ev = desk.wait_event(lambda e: e["event"] == "TradingStateChanged" and e["state"] == "halted")
        assert (ev["scope"], ev["source"], ev["reason"]) == ("desk", "signal", "SIGUSR1 received")
        assert desk.stop() == 0
    finally:
        desk.kill()
    # the latch survived the restart: a new desk in the same data dir comes up HALTED
    desk2 = DeskProcess(tmp_path)
    try:
        ev = desk2.wait_event(lambda e: e["event"] == "TradingStateChanged")
        assert (ev["scope"], ev["state"], ev["source"]) == ("desk", "halted", "startup")
        desk2.wait_log(lambda r: r.get("msg") == "control API listening")
        st = _opdesk(tmp_path, "status")
        assert st.stdout.splitlines()[0].endswith(": HALTED")
        assert desk2.stop() == 0
    finally:
        desk2.kill()


def test_opdesk_kill_without_a_running_desk_says_so(tmp_path):
    r = _opdesk(tmp_path, "kill", "--reason", "nobody home")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"opdesk: no running desk found: {tmp_path / 'demo' / 'control.json'} does not exist (start it, or pass --url)"
    )


def test_cli_finds_the_desk_through_its_config_and_a_token_from_the_environment(tmp_path, monkeypatch):
    import argparse

    from pydantic import SecretStr

    from engines.control.token import resolve_token
    from opdesk.control_client import resolve

    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'[desk]\nname = "d1"\ndata_dir = "{tmp_path}"\n')
    (tmp_path / "d1").mkdir()
    (tmp_path / "d1" / "control.json").write_text('{"url": "http://127.0.0.1:9"}')
    (tmp_path / "d1" / "control.token").write_text("file-token\n")
    args = argparse.Namespace(url=None, token=None, sub_config=str(cfg), config=None)
    assert resolve(args) == ("http://127.0.0.1:9", "file-token")
    monkeypatch.setenv("OPDESK_CONTROL__TOKEN", "env-token-123")
    assert resolve(args) == ("http://127.0.0.1:9", "env-token-123")
    args = argparse.Namespace(url="http://x:1", token="given", sub_config=str(cfg), config=None)
    assert resolve(args) == ("http://x:1", "given")
    # a configured token is used as is and nothing is written
    assert resolve_token(SecretStr("configured"), tmp_path / "other") == "configured"
    assert not (tmp_path / "other").exists()
