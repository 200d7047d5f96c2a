"""Operator control of FIX sessions (logout, reconnect) through the desk's command dispatcher."""

from __future__ import annotations

import pytest

from engines import commands
from engines.config import load_config
from engines.fix.session import SessionState
from engines.runtime import Desk

BUILDERS = [
    "engines.sim.prices:build",
    "engines.matching.service:build",
    "engines.risk.service:build",
    "engines.fix.service:build",
]
CLIENT = "FIX.4.4:DESKCLIENT->OPDESK"
SERVER = "FIX.4.4:OPDESK->DESKCLIENT"


@pytest.fixture
async def desk(tmp_path):
    d = Desk(load_config(), data_dir=tmp_path).build(BUILDERS)
    await d.start()
    yield d
    await d.stop()


async def test_logout_then_reconnect_the_demo_initiator(desk):
    fix = desk.services["fix"]
    client, server = fix.find("demo-client"), fix.find(SERVER)
    assert client.state is SessionState.ACTIVE and client.key == CLIENT
    seq_before = client.next_sender_seq

    await commands.execute(desk, "fix_logout", {"session": CLIENT}, source="console")
    assert client.state is SessionState.DISCONNECTED
    await server.wait_state(SessionState.DISCONNECTED, 5)
    assert client.next_sender_seq == seq_before + 1  # the Logout took one sequence number

    result = await commands.execute(desk, "fix_reconnect", {"session": "demo-client"}, source="console")
    assert result == {"session": "demo-client", "action": "fix_reconnect"}
    await client.wait_state(SessionState.ACTIVE, 5)
    await server.wait_state(SessionState.ACTIVE, 5)
    assert client.next_sender_seq == seq_before + 2  # Logon continued the sequence, no reset


async def test_bad_requests_are_refused_with_the_reason(desk):
    with pytest.raises(commands.CommandError, match="no FIX session 'nope'"):
        await commands.execute(desk, "fix_logout", {"session": "nope"}, source="console")
    with pytest.raises(commands.CommandError, match="is an acceptor session: the counterparty reconnects"):
        await commands.execute(desk, "fix_reconnect", {"session": SERVER}, source="console")
