"""The remote console channel, in process: real WebSocket server on the desk, real client."""

from __future__ import annotations

import asyncio
import json

import pytest

from engines.config import load_config
from engines.events import Event, LogRecordEvent, PriceTick
from engines.remote.client import CommandFailed, LinkState, RemoteDeskClient
from engines.runtime import Desk

OPERATOR = "op-token-0123456789"
VIEWER = "viewer-token-0123456789"


@pytest.fixture
async def desk(tmp_path, monkeypatch):
    monkeypatch.setenv("OPDESK_DESK__DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPDESK_REMOTE__PORT", "0")
    monkeypatch.setenv("OPDESK_REMOTE__CLIENT_CAPACITY", "50")
    monkeypatch.setenv(
        "OPDESK_REMOTE__TOKENS",
        json.dumps([{"name": "alice", "role": "operator", "token": OPERATOR}, {"name": "bob", "role": "viewer", "token": VIEWER}]),
    )
    monkeypatch.setenv("OPDESK_SIM__TICK_HZ", "50")
    d = Desk(load_config()).build(["engines.sim.prices:build", "engines.remote.service:build"])
    await d.start()
    yield d
    await d.stop()


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[list[Event]] = []
        self.events: list[Event] = []
        self.links: list[LinkState] = []
        self.changed = asyncio.Event()

    def on_snapshot(self, events, status) -> None:
        self.snapshots.append(events)
        self.status = status
        self.changed.set()

    def on_events(self, events) -> None:
        self.events.extend(events)
        self.changed.set()

    def on_link(self, state, detail) -> None:
        self.links.append(state)
        self.changed.set()

    async def until(self, predicate, timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def client(desk: Desk, token: str, rec: Recorder) -> RemoteDeskClient:
    url = f"ws://127.0.0.1:{desk.services['remote'].port}"
    c = RemoteDeskClient(url, token, on_snapshot=rec.on_snapshot, on_events=rec.on_events, on_link=rec.on_link, backoff_initial=0.05)
    c.start()
    return c


async def test_snapshot_then_stream_in_order(desk):
    rec = Recorder()
    c = client(desk, VIEWER, rec)
    try:
        await rec.until(lambda: rec.snapshots)
        snap_syms = {e.symbol for e in rec.snapshots[0] if isinstance(e, PriceTick)}
        assert snap_syms == {"BTC-USD", "ETH-USD"}
        assert c.role == "viewer" and c.name == "bob" and c.desk == "demo"
        await rec.until(lambda: sum(isinstance(e, PriceTick) for e in rec.events) >= 6)
        seqs = [e.seq for e in rec.events]
        assert seqs == sorted(seqs) and seqs[0] > max(e.seq for e in rec.snapshots[0])
        assert c.gaps == 0
    finally:
        await c.close()


async def test_wrong_token_is_refused(desk):
    rec = Recorder()
    c = client(desk, "not-a-token", rec)
    await rec.until(lambda: LinkState.REFUSED in rec.links)
    assert c.state is LinkState.REFUSED
    await c.close()


async def test_viewer_cannot_act_operator_can(desk):
    rv, ro = Recorder(), Recorder()
    viewer, operator = client(desk, VIEWER, rv), client(desk, OPERATOR, ro)
    try:
        await viewer.connected.wait()
        await operator.connected.wait()
        with pytest.raises(CommandFailed, match="forbidden: token 'bob' is a viewer; 'cancel_all' needs an operator token"):
            await viewer.command("cancel_all", {"symbol": "BTC-USD"})
        status = await viewer.command("status")
        assert status["desk"] == "demo"
        result = await operator.command("cancel_all", {"symbol": "BTC-USD"})
        assert result == {"canceled": 0, "unconfirmed": 0}
        with pytest.raises(CommandFailed, match="symbol: unknown instrument 'NOPE'"):
            await operator.command("cancel_all", {"symbol": "NOPE"})
        # the operator's action is audited with the token's name
        await ro.until(lambda: any(isinstance(e, LogRecordEvent) and e.source == "remote:alice" for e in ro.events))
    finally:
        await viewer.close()
        await operator.close()


async def test_dropped_connection_reconnects_and_resnapshots(desk):
    rec = Recorder()
    c = client(desk, VIEWER, rec)
    try:
        await rec.until(lambda: len(rec.snapshots) == 1)
        await c.drop()
        await rec.until(lambda: LinkState.DISCONNECTED in rec.links)
        await rec.until(lambda: len(rec.snapshots) == 2 and c.state is LinkState.LIVE)
        assert c.connects == 2
    finally:
        await c.close()


async def test_client_that_falls_behind_is_resnapshotted_and_desk_unaffected(desk):
    rec = Recorder()
    c = client(desk, VIEWER, rec)
    try:
        await rec.until(lambda: len(rec.snapshots) == 1)
        before = desk.bus.seq
        for i in range(500):  # a burst far beyond the client's 50-event lossless buffer, in one go
            desk.bus.publish(LogRecordEvent(level="INFO", source="test", message=f"burst {i}"))
        assert desk.bus.seq == before + 500 + 1  # + the QueueOverflow report; publishing never blocked
        await rec.until(lambda: len(rec.snapshots) >= 2)
        assert c.resyncs >= 1
        assert desk.services["remote"].resyncs >= 1
    finally:
        await c.close()


async def test_tls_channel(tmp_path, monkeypatch):
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    monkeypatch.setenv("OPDESK_DESK__DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPDESK_REMOTE__PORT", "0")
    monkeypatch.setenv("OPDESK_REMOTE__TLS_CERT", str(cert))
    monkeypatch.setenv("OPDESK_REMOTE__TLS_KEY", str(key))
    monkeypatch.setenv("OPDESK_REMOTE__TOKENS", json.dumps([{"name": "alice", "role": "operator", "token": OPERATOR}]))
    d = Desk(load_config()).build(["engines.sim.prices:build", "engines.remote.service:build"])
    await d.start()
    try:
        tokens = json.loads((d.data_dir / "remote-tokens.json").read_text())
        assert tokens["url"].startswith("wss://127.0.0.1:")
        rec = Recorder()
        c = RemoteDeskClient(
            tokens["url"], OPERATOR, on_snapshot=rec.on_snapshot, on_events=rec.on_events, on_link=rec.on_link,
            ssl_context=ssl.create_default_context(cafile=str(cert)),
        )
        c.start()
        try:
            await rec.until(lambda: rec.snapshots)
            assert c.role == "operator"
        finally:
            await c.close()
    finally:
        await d.stop()
