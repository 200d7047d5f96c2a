"""FIX session test cases over real sockets: a raw peer (tests/fix_peer.py) against our acceptor.

Every test asserts the exact messages on the wire (MsgType, MsgSeqNum, 45/371/372/373, …) and the
state the session ends in. Time only moves through the injected ManualClock.
"""

from __future__ import annotations

from typing import Any

import pytest

from engines.bus import Bus
from engines.clock import ManualClock
from engines.fix.acceptor import Acceptor
from engines.fix.application import Application
from engines.fix.errors import RejectInfo
from engines.fix.events import FixMessageLogged, FixSessionState, SessionState
from engines.fix.message import Message
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import MemoryStore
from tests.fix_peer import RawPeer, tags


class Recorder(Application):
    """Echoes NewOrderSingle (35=D) with an ExecutionReport; everything else is unsupported."""

    def __init__(self) -> None:
        self.app: list[Any] = []
        self.admin: list[str] = []
        self.logons = 0
        self.logouts = 0

    def on_logon(self, session: Session) -> None:
        self.logons += 1

    def on_logout(self, session: Session) -> None:
        self.logouts += 1

    def from_admin(self, msg: Any, session: Session) -> None:
        self.admin.append(msg.msg_type)

    async def from_app(self, msg: Any, session: Session) -> None:  # async on purpose: both kinds work
        if msg.msg_type != "D":
            await super_from_app(msg, session)
        self.app.append(msg)
        session.send_nowait(Message("8", [(11, msg.get(11)), (150, "0"), (39, "0")]))


async def super_from_app(msg: Any, session: Session) -> None:
    Application().from_app(msg, session)


class Env:
    def __init__(self, clock: ManualClock, session: Session, acceptor: Acceptor, app: Recorder, bus: Bus) -> None:
        self.clock = clock
        self.session = session
        self.acceptor = acceptor
        self.app = app
        self.bus = bus
        self.peers: list[RawPeer] = []

    async def peer(self, **kw: Any) -> RawPeer:
        p = await RawPeer.connect(self.acceptor.port, self.clock, **kw)
        self.peers.append(p)
        return p

    async def logged_on(self, hb: int = 30) -> RawPeer:
        p = await self.peer()
        reply = await p.logon(hb)
        assert tags(reply, 34, 98, 108) == {34: "1", 98: "0", 108: str(hb)}
        await self.session.wait_state(SessionState.ACTIVE)
        return p


async def make_env(settings: SessionSettings | None = None, *, begin: str = "FIX.4.4", validator: Any = None,
                   store: Any = None, log_dir: Any = None) -> Env:
    clock = ManualClock()
    bus = Bus(clock)
    app = Recorder()
    session = Session(
        SessionID(begin, "SRV", "CLI"),
        settings or SessionSettings(heartbeat_interval=30),
        app,
        store or MemoryStore(),
        clock=clock,
        bus=bus,
        validator=validator,
        log_dir=log_dir,
    )
    acceptor = Acceptor([session])
    await acceptor.start()
    return Env(clock, session, acceptor, app, bus)


@pytest.fixture
async def env():
    e = await make_env()
    yield e
    for p in e.peers:
        await p.close()
    await e.acceptor.stop()


async def assert_alive(peer: RawPeer, expect_seq: int) -> None:
    """The session still answers: TestRequest → Heartbeat with the echoed id and the expected seq."""
    await peer.send("1", [(112, "ALIVE")])
    hb = await peer.expect("0")
    assert tags(hb, 34, 112) == {34: str(expect_seq), 112: "ALIVE"}


# --- Logon -------------------------------------------------------------------------------------------


async def test_logon_accepted(env: Env) -> None:
    states: list[SessionState] = []
    env.bus.subscribe(FixSessionState, lambda e: states.append(e.state))
    p = await env.logged_on(hb=30)
    s = env.session
    assert (s.next_sender_seq, s.next_target_seq) == (2, 2)
    assert states == [SessionState.LOGON_IN_PROGRESS, SessionState.ACTIVE]
    assert env.app.logons == 1 and env.app.admin == ["A"]
    assert p.received[0].get(141) is None
    await assert_alive(p, 2)


async def test_logon_reset_seq_num_flag_resets_both_sides() -> None:
    store = MemoryStore()
    await store.save("FIX.4.4:SRV->CLI", 17, 23, [(16, b"old")])
    env = await make_env(store=store)
    try:
        p = await env.peer()
        reply = await p.logon(extra=[(141, "Y")])
        assert tags(reply, 34, 141, 108) == {34: "1", 141: "Y", 108: "30"}
        assert (env.session.next_sender_seq, env.session.next_target_seq) == (2, 2)
        await env.session.flushed()
        assert await store.messages("FIX.4.4:SRV->CLI", 1, 0) == []
        assert (await store.load("FIX.4.4:SRV->CLI")).next_sender == 2
        await p.close()
    finally:
        await env.acceptor.stop()


async def test_logon_heartbeat_interval_is_adopted(env: Env) -> None:
    p = await env.logged_on(hb=7)
    assert env.session.heartbeat_interval == 7
    env.clock.advance(7)
    env.session.check_timers()
    hb = await p.expect("0")
    assert tags(hb, 34, 112) == {34: "2", 112: None}


async def test_logon_username_password(tmp_path) -> None:
    settings = SessionSettings(username="trader", password="s3cret-pw")
    env = await make_env(settings, log_dir=tmp_path)
    logged: list[FixMessageLogged] = []
    env.bus.subscribe(FixMessageLogged, logged.append)
    try:
        bad = await env.peer()
        await bad.send("A", [(98, 0), (108, 30), (553, "trader"), (554, "wrong-pw")])
        out = await bad.expect("5")
        assert tags(out, 34, 58) == {34: "1", 58: "Invalid username or password"}
        await bad.expect_closed()
        await env.session.wait_state(SessionState.DISCONNECTED)
        assert env.app.logons == 0

        good = await env.peer()
        good.seq = 2
        reply = await good.logon(extra=[(553, "trader"), (554, "s3cret-pw")])
        assert tags(reply, 34, 553, 554) == {34: "2", 553: None, 554: None}
        await env.session.wait_state(SessionState.ACTIVE)
        # The password never reaches the bus or the audit log.
        ins = [e.raw for e in logged if e.direction == "in" and e.msg_type == "A"]
        assert ins and all("554=***" in r and "s3cret-pw" not in r and "wrong-pw" not in r for r in ins)
        await env.session.flushed()
        env.session._write_audit(["flush"])
        text = env.session.audit_path.read_text()
        assert "554=***" in text and "s3cret-pw" not in text and "wrong-pw" not in text
    finally:
        for p in env.peers:
            await p.close()
        await env.acceptor.stop()


# --- Heartbeat and TestRequest -----------------------------------------------------------------------


async def test_heartbeat_after_heartbeat_interval_of_silence(env: Env) -> None:
    p = await env.logged_on(hb=30)
    env.clock.advance(29.9)
    env.session.check_timers()
    env.clock.advance(0.1)
    env.session.check_timers()
    hb = await p.expect("0")
    assert tags(hb, 34, 112) == {34: "2", 112: None}
    await assert_alive(p, 3)  # nothing else was sent in between


async def test_test_request_is_answered_with_its_id(env: Env) -> None:
    p = await env.logged_on()
    await p.send("1", [(112, "PING-42")])
    hb = await p.expect("0")
    assert tags(hb, 34, 112) == {34: "2", 112: "PING-42"}
    assert env.session.next_target_seq == 3


async def test_silence_test_request_then_disconnect(env: Env) -> None:
    p = await env.logged_on(hb=10)
    s = env.session
    # The peer keeps sending heartbeats, so we never need to send ours; then it goes quiet.
    env.clock.advance(11.9)
    s.check_timers()  # 1.19 x HeartBtInt of silence: only our own Heartbeat is due
    hb = await p.expect("0")
    assert tags(hb, 34) == {34: "2"}
    env.clock.advance(0.1)
    s.check_timers()  # 1.2 x HeartBtInt: TestRequest
    tr = await p.expect("1")
    assert tags(tr, 34, 112) == {34: "3", 112: "TEST1"}
    env.clock.advance(11.9)
    s.check_timers()  # 2.39 x: still waiting (a Heartbeat of ours is due)
    assert (await p.expect("0")).get_int(34) == 4
    env.clock.advance(0.1)
    s.check_timers()  # 2.4 x without an answer: disconnect
    assert await p.expect_closed() == b""
    await s.wait_state(SessionState.DISCONNECTED)
    assert "no answer to TestRequest TEST1" in s.reason


async def test_test_request_answered_keeps_session(env: Env) -> None:
    p = await env.logged_on(hb=10)
    s = env.session
    env.clock.advance(12)
    s.check_timers()
    tr = await p.expect("1")  # the TestRequest is traffic too: no Heartbeat needed with it
    assert tags(tr, 34, 112) == {34: "2", 112: "TEST1"}
    await p.send("0", [(112, tr.get_str(112))])
    await s.wait_for(lambda: s.next_target_seq == 3)
    assert s._test_req_id is None
    env.clock.advance(10)
    s.check_timers()
    assert tags(await p.expect("0"), 34, 112) == {34: "3", 112: None}  # a plain Heartbeat, no disconnect
    assert s.state is SessionState.ACTIVE


# --- sequence numbers --------------------------------------------------------------------------------


async def test_seq_too_high_sends_resend_request_and_processes_after_gap_fill(env: Env) -> None:
    p = await env.logged_on()
    p.seq = 5
    await p.send("D", [(11, "ord-5")])
    rr = await p.expect("2")
    assert tags(rr, 34, 7, 16) == {34: "2", 7: "2", 16: "0"}
    assert env.session.resend_pending and env.app.app == []
    # The peer fills 2..4 with a gap fill; the queued seq 5 is then processed.
    await p.send("4", [(123, "Y"), (36, 5)], seq=2, header=[(43, "Y"), (122, p.now())])
    er = await p.expect("8")
    assert tags(er, 34, 11) == {34: "3", 11: "ord-5"}
    assert env.session.next_target_seq == 6 and not env.session.resend_pending


async def test_seq_too_low_without_possdup_logout_and_disconnect(env: Env) -> None:
    p = await env.logged_on()
    await p.send("0", seq=1)
    lo = await p.expect("5")
    assert tags(lo, 34, 58) == {34: "2", 58: "MsgSeqNum too low, expecting 2 but received 1"}
    assert await p.expect_closed() == b""
    await env.session.wait_state(SessionState.DISCONNECTED)
    assert env.app.logouts == 1


async def test_possdup_duplicate_is_ignored(env: Env) -> None:
    p = await env.logged_on()
    await p.send("D", [(11, "a")])
    assert (await p.expect("8")).get_int(34) == 2
    await p.send("D", [(11, "a")], seq=2, header=[(43, "Y"), (122, p.now(-1))])
    await assert_alive(p, 3)  # the duplicate produced nothing
    assert len(env.app.app) == 1 and env.session.next_target_seq == 4


async def test_possdup_without_orig_sending_time_is_rejected(env: Env) -> None:
    p = await env.logged_on()
    await p.send("D", [(11, "a")], header=[(43, "Y")])
    rj = await p.expect("3")
    assert tags(rj, 34, 45, 371, 372, 373) == {34: "2", 45: "2", 371: "122", 372: "D", 373: "1"}
    assert env.session.next_target_seq == 3 and env.app.app == []
    await assert_alive(p, 3)


async def test_orig_sending_time_after_sending_time_is_rejected(env: Env) -> None:
    p = await env.logged_on()
    await p.send("D", [(11, "a")], header=[(43, "Y"), (122, p.now(+5))])
    rj = await p.expect("3")
    assert tags(rj, 34, 45, 371, 372, 373) == {34: "2", 45: "2", 371: "122", 372: "D", 373: "10"}
    lo = await p.expect("5")
    assert tags(lo, 34, 58) == {34: "3", 58: "OrigSendingTime after SendingTime"}
    await p.expect_closed()
    await env.session.wait_state(SessionState.DISCONNECTED)
    assert env.app.app == []


async def test_sending_time_outside_accuracy_window_is_rejected(env: Env) -> None:
    p = await env.logged_on()
    await p.send("D", [(11, "a")], sending_time=p.now(-121))
    rj = await p.expect("3")
    assert tags(rj, 34, 45, 371, 372, 373) == {34: "2", 45: "2", 371: "52", 372: "D", 373: "10"}
    lo = await p.expect("5")
    assert tags(lo, 34, 58) == {34: "3", 58: "SendingTime accuracy problem"}
    await p.expect_closed()
    await env.session.wait_state(SessionState.DISCONNECTED)


async def test_wrong_comp_id_is_rejected_and_logged_out(env: Env) -> None:
    p = await env.logged_on()
    await p.send("D", [(11, "a")], sender="INTRUDER")
    rj = await p.expect("3")
    assert tags(rj, 34, 45, 371, 372, 373) == {34: "2", 45: "2", 371: "49", 372: "D", 373: "9"}
    lo = await p.expect("5")
    assert tags(lo, 34, 58) == {34: "3", 58: "CompID problem"}
    await p.expect_closed()
    await env.session.wait_state(SessionState.DISCONNECTED)
    assert env.app.app == []


async def test_wrong_begin_string_logout_and_disconnect(env: Env) -> None:
    p = await env.logged_on()
    await p.send("0", begin="FIX.4.2")
    lo = await p.expect("5")
    assert tags(lo, 8, 34, 58) == {8: "FIX.4.4", 34: "2", 58: "Incorrect BeginString FIX.4.2"}
    await p.expect_closed()
    await env.session.wait_state(SessionState.DISCONNECTED)


async def test_first_message_not_logon_disconnects_without_reply(env: Env) -> None:
    p = await env.peer()
    await p.send("0")
    assert await p.expect_closed() == b""
    assert env.acceptor.refused == 1
    assert env.session.state is SessionState.DISCONNECTED and env.session.next_sender_seq == 1


async def test_garbled_messages_ignored_without_consuming_seq(env: Env) -> None:
    p = await env.logged_on()
    good = p.build("1", [(112, "G")], seq=2)
    bad_checksum = good[:-4] + b"%03d\x01" % ((int(good[-4:-1]) + 1) % 256)
    bad_length = good.replace(b"\x019=", b"\x019=9", 1)
    wrong_third = p.build("1", [(112, "G")], seq=2).replace(b"\x0135=1\x01", b"\x0158=x\x01", 1)
    wrong_third = wrong_third[:-7] + b"10=%03d\x01" % (sum(wrong_third[:-7]) & 255)
    await p.send_raw(b"garbage" + bad_checksum + bad_length + b"\x01\x01" + wrong_third)
    await p.send_raw(good)  # seq 2 is still the expected one
    hb = await p.expect("0")
    assert tags(hb, 34, 112) == {34: "2", 112: "G"}
    assert env.session.next_target_seq == 3 and env.session.errors >= 3
    assert env.session.state is SessionState.ACTIVE


async def test_second_connection_refused_first_survives(env: Env) -> None:
    p = await env.logged_on()
    intruder = await env.peer()
    await intruder.send("A", [(98, 0), (108, 30)], seq=2)
    assert await intruder.expect_closed() == b""
    assert env.acceptor.refused == 1
    p.seq = 2
    await assert_alive(p, 2)
    assert env.session.state is SessionState.ACTIVE


# --- SequenceReset -----------------------------------------------------------------------------------


async def test_sequence_reset_gap_fill(env: Env) -> None:
    p = await env.logged_on()
    await p.send("4", [(123, "Y"), (36, 10)], header=[(43, "Y"), (122, p.now())])
    await env.session.wait_for(lambda: env.session.next_target_seq == 10)
    # A gap fill that would lower the sequence number is rejected (373=5, 371=36).
    await p.send("4", [(123, "Y"), (36, 3)], seq=10)
    rj = await p.expect("3")
    assert tags(rj, 34, 45, 371, 372, 373) == {34: "2", 45: "10", 371: "36", 372: "4", 373: "5"}
    assert env.session.next_target_seq == 11


async def test_sequence_reset_reset_mode_ignores_msg_seq_num(env: Env) -> None:
    p = await env.logged_on()
    await p.send("4", [(36, 20)], seq=999)
    await env.session.wait_for(lambda: env.session.next_target_seq == 20)
    await p.send("4", [(36, 5)], seq=1)
    rj = await p.expect("3")
    assert tags(rj, 34, 45, 371, 373) == {34: "2", 45: "1", 371: "36", 373: "5"}
    assert env.session.next_target_seq == 20
    p.seq = 20
    await assert_alive(p, 3)


# --- Reject, Logout, BusinessMessageReject, validation -----------------------------------------------


async def test_reject_received_is_consumed(env: Env) -> None:
    p = await env.logged_on()
    await p.send("3", [(45, 1), (373, 99), (58, "whatever")])
    await assert_alive(p, 2)
    assert env.session.next_target_seq == 4 and env.app.admin[-2:] == ["3", "1"]


async def test_logout_from_peer_is_answered(env: Env) -> None:
    states: list[SessionState] = []
    env.bus.subscribe(FixSessionState, lambda e: states.append(e.state))
    p = await env.logged_on()
    await p.send("5", [(58, "end of day")])
    lo = await p.expect("5")
    assert tags(lo, 34, 58) == {34: "2", 58: None}
    await p.expect_closed()
    await env.session.wait_state(SessionState.DISCONNECTED)
    assert states[-2:] == [SessionState.LOGOUT_IN_PROGRESS, SessionState.DISCONNECTED]
    assert env.app.logouts == 1


async def test_logout_initiated_by_us(env: Env) -> None:
    import asyncio

    p = await env.logged_on()
    task = asyncio.create_task(env.session.logout("maintenance"))
    lo = await p.expect("5")
    assert tags(lo, 34, 58) == {34: "2", 58: "maintenance"}
    assert env.session.state is SessionState.LOGOUT_IN_PROGRESS
    await p.send("5")
    await task
    await p.expect_closed()
    assert env.session.state is SessionState.DISCONNECTED and env.session.reason == "logout confirmed"


async def test_unsupported_application_message_gets_business_reject(env: Env) -> None:
    p = await env.logged_on()
    await p.send("AE", [(571, "r1")])
    bmr = await p.expect("j")
    assert tags(bmr, 34, 45, 372, 380) == {34: "2", 45: "2", 372: "AE", 380: "3"}
    assert env.session.next_target_seq == 3


class SideValidator:
    def validate(self, msg: Any) -> RejectInfo | None:
        if msg.get(54) not in (b"1", b"2"):
            return RejectInfo(5, 54, "Value is incorrect (out of range) for this tag")
        return None


async def test_validator_reject_and_validation_switch() -> None:
    env = await make_env(validator=SideValidator())
    try:
        p = await env.logged_on()
        await p.send("D", [(11, "a"), (54, "9")])
        rj = await p.expect("3")
        assert tags(rj, 34, 45, 371, 372, 373, 58) == {
            34: "2", 45: "2", 371: "54", 372: "D", 373: "5", 58: "Value is incorrect (out of range) for this tag"
        }
        await p.send("D", [(11, "b"), (54, "1")])
        assert tags(await p.expect("8"), 34, 11) == {34: "3", 11: "b"}
        env.session.settings.validate_messages = False
        await p.send("D", [(11, "c"), (54, "9")])
        assert tags(await p.expect("8"), 34, 11) == {34: "4", 11: "c"}
    finally:
        for p in env.peers:
            await p.close()
        await env.acceptor.stop()


async def test_fix42_session_and_reject_reason_beyond_42() -> None:
    class Dup:
        def validate(self, msg: Any) -> RejectInfo | None:
            return RejectInfo(13, 11, "Tag appears more than once")

    env = await make_env(begin="FIX.4.2", validator=Dup())
    try:
        p = await env.peer(begin="FIX.4.2")
        reply = await p.logon()
        assert reply.begin_string == "FIX.4.2"
        await p.send("D", [(11, "a"), (11, "b")])
        rj = await p.expect("3")
        # FIX 4.2 defines 373 only up to 11: the reason travels in Text.
        assert tags(rj, 45, 371, 372, 373, 58) == {45: "2", 371: "11", 372: "D", 373: None,
                                                   58: "Tag appears more than once"}
    finally:
        for p in env.peers:
            await p.close()
        await env.acceptor.stop()


# --- serving ResendRequests --------------------------------------------------------------------------


async def test_serving_resend_request_gap_fills_admin_and_replays_app(env: Env) -> None:
    p = await env.logged_on()
    for i in range(3):
        await p.send("D", [(11, f"o{i}")])
    originals = [await p.expect("8") for _ in range(3)]  # our seq 2, 3, 4
    env.clock.advance(30)
    env.session.check_timers()
    assert (await p.expect("0")).get_int(34) == 5
    env.clock.advance(1)
    await p.send("2", [(7, 1), (16, 0)])
    gf1 = await p.expect("4")
    assert tags(gf1, 34, 43, 123, 36) == {34: "1", 43: "Y", 123: "Y", 36: "2"}
    for orig in originals:
        r = await p.expect("8")
        assert r.get(34) == orig.get(34) and r.get(11) == orig.get(11)
        assert r.get(43) == b"Y" and r.get(122) == orig.get(52) and r.get(52) != orig.get(52)
    gf2 = await p.expect("4")
    assert tags(gf2, 34, 43, 123, 36) == {34: "5", 43: "Y", 123: "Y", 36: "6"}
    await assert_alive(p, 6)  # replays did not consume sequence numbers


async def test_serving_resend_request_while_own_resend_pending(env: Env) -> None:
    p = await env.logged_on()
    await p.send("D", [(11, "x")])  # peer seq 2, our ER seq 2
    assert (await p.expect("8")).get_int(34) == 2
    # The peer's ResendRequest arrives with seq 6: we are missing 3..5 and it wants our 2..
    p.seq = 6
    await p.send("2", [(7, 2), (16, 0)])
    replay = await p.expect("8")
    assert tags(replay, 34, 43, 11) == {34: "2", 43: "Y", 11: "x"}
    rr = await p.expect("2")
    assert tags(rr, 34, 7, 16) == {34: "3", 7: "3", 16: "0"}
    assert env.session.resend_pending
    # Now the peer answers our request: 3..5 as a gap fill; its ResendRequest (6) was already served.
    await p.send("4", [(123, "Y"), (36, 6)], seq=3, header=[(43, "Y"), (122, p.now())])
    await env.session.wait_for(lambda: env.session.next_target_seq == 7)
    assert not env.session.resend_pending
    p.seq = 7
    await assert_alive(p, 4)


# --- events and audit log ----------------------------------------------------------------------------


async def test_stats_event_and_rotated_audit_log(tmp_path) -> None:
    from engines.fix.events import FixSessionStats

    env = await make_env(SessionSettings(log_max_bytes=2_000, log_backups=2), log_dir=tmp_path)
    stats: list[FixSessionStats] = []
    env.bus.subscribe(FixSessionStats, stats.append)
    try:
        p = await env.logged_on()
        for i in range(20):
            await p.send("D", [(11, f"order-{i:03d}")])
            await p.expect("8")
        await p.send("5")
        await p.expect("5")
        await env.session.wait_state(SessionState.DISCONNECTED)
        last = stats[-1]
        assert (last.session, last.state, last.next_sender_seq, last.next_target_seq) == (
            "FIX.4.4:SRV->CLI", SessionState.DISCONNECTED, 23, 23
        )
        assert (last.msgs_in, last.msgs_out) == (22, 22)
        logs = sorted(tmp_path.glob("FIX.4.4-SRV-CLI.messages.log*"))
        assert [x.name for x in logs] == [
            "FIX.4.4-SRV-CLI.messages.log", "FIX.4.4-SRV-CLI.messages.log.1", "FIX.4.4-SRV-CLI.messages.log.2"
        ]
        text = "".join(x.read_text() for x in logs)
        assert "out 8=FIX.4.4|" in text and "in  8=FIX.4.4|" in text and "|11=order-019|" in text
    finally:
        for p in env.peers:
            await p.close()
        await env.acceptor.stop()
