"""Framer, parser and encoder of the FIX wire format."""

from __future__ import annotations

import random

import simplefix
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.fix.message import (
    FixFramer,
    Message,
    build,
    from_simplefix,
    mask,
    parse,
    parse_utc_timestamp,
    utc_timestamp,
)

ST = b"20260101-00:00:00.000"


def er(seq: int, clordid: str = "c1") -> bytes:
    return build("FIX.4.4", "8", seq, "SRV", "CLI", [(37, "o1"), (11, clordid), (150, "0"), (39, "0"), (55, "BTC-USD"),
                                                    (54, 1), (38, 10), (44, "50000.5"), (58, "a=b")], sending_time=ST)


def framer_with_log() -> tuple[FixFramer, list[str]]:
    bad: list[str] = []
    return FixFramer(on_garbled=lambda raw, why: bad.append(why)), bad


def test_encode_matches_simplefix_and_checksum() -> None:
    raw = er(7)
    m = simplefix.FixMessage()
    for tag, val in [(8, "FIX.4.4"), (35, "8"), (49, "SRV"), (56, "CLI"), (34, 7), (52, ST.decode()), (37, "o1"),
                     (11, "c1"), (150, "0"), (39, "0"), (55, "BTC-USD"), (54, 1), (38, 10), (44, "50000.5"),
                     (58, "a=b")]:
        m.append_pair(tag, val)
    assert raw == m.encode()
    p = simplefix.FixParser()
    p.append_buffer(raw)
    assert p.get_message() is not None  # simplefix accepts our bytes (length and checksum right)


def test_parse_fields_pairs_and_repeated_tags() -> None:
    m = parse(er(3))
    assert m.msg_type == "8" and m.begin_string == "FIX.4.4" and m.seq_num == 3
    assert m.get(11) == b"c1" and m.get(58) == b"a=b" and m.get(8) == b"FIX.4.4" and m.get(9999) is None
    assert m.get_int(38) == 10 and m.get_str(55) == "BTC-USD" and 44 in m and 45 not in m
    assert m.pairs()[:4] == [(8, b"FIX.4.4"), (9, m.get(9)), (35, b"8"), (49, b"SRV")]
    assert m.repeated_tags() == []
    grp = parse(build("FIX.4.4", "V", 1, "A", "B", [(262, "r"), (146, 2), (55, "X"), (55, "Y")]))
    assert grp.repeated_tags() == [55]
    assert [v for t, v in grp.pairs() if t == 55] == [b"X", b"Y"]
    # A tag that is a suffix of another (1 vs 11, 38 vs 8) is never confused.
    assert parse(build("FIX.4.4", "D", 1, "A", "B", [(11, "x"), (1, "acct")])).get(1) == b"acct"


def test_framer_partial_reads_byte_by_byte() -> None:
    f, bad = framer_with_log()
    stream = er(1) + er(2)
    out = []
    for i in range(len(stream)):
        out += f.feed(stream[i : i + 1])
    assert [parse(x).seq_num for x in out] == [1, 2] and bad == [] and f.pending == 0


def test_framer_several_messages_per_read_and_random_splits() -> None:
    msgs = [er(i, f"c{i}") for i in range(1, 51)]
    stream = b"".join(msgs)
    rng = random.Random(7)
    f, bad = framer_with_log()
    out: list[bytes] = []
    pos = 0
    while pos < len(stream):
        n = rng.randint(1, 700)
        out += f.feed(stream[pos : pos + n])
        pos += n
    assert out == msgs and bad == []


def test_framer_resyncs_after_garbage() -> None:
    f, bad = framer_with_log()
    out = f.feed(b"\x00\xffnoise 8=F" + er(1) + b"junk\x01\x01" + er(2) + b"8=FIX.4.4\x01")
    assert [parse(x).seq_num for x in out] == [1, 2] and bad == []
    assert f.feed(b"9=5")[:1] == []
    out = f.feed(b"x\x01" + er(3))  # "9=5x" is not a number: garbled, then resync
    assert [parse(x).seq_num for x in out] == [3] and bad == ["bad BodyLength"]


def test_framer_flags_garbled_frames() -> None:
    good = er(5)
    bad_checksum = good[:-4] + b"%03d\x01" % ((int(good[-4:-1]) + 1) % 256)
    too_short = good.replace(b"\x019=", b"\x019=1", 1)  # 9=1NN: longer than the message
    shorter = good.replace(b"\x019=" + parse(good).get(9), b"\x019=20", 1)
    wrong_second = good.replace(b"\x019=", b"\x0135=8\x019=", 1)
    body = b"49=A\x0156=B\x0134=1\x01"
    no_msgtype = b"8=FIX.4.4\x019=%d\x01%s" % (len(body), body)
    no_msgtype += b"10=%03d\x01" % (sum(no_msgtype) & 255)
    f, bad = framer_with_log()
    out = f.feed(bad_checksum + too_short + b"\x01" + shorter + wrong_second + no_msgtype + good)
    assert out == [good]
    assert bad == ["bad CheckSum", "bad BodyLength", "bad BodyLength", "second field is not BodyLength (9)",
                   "third field is not MsgType (35)"]
    assert f.garbled == 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=30), st.binary(max_size=40))
def test_framer_never_loses_a_good_message(cuts, garbage) -> None:
    msgs = [er(i) for i in range(1, 6)]
    stream = garbage.replace(b"8=FIX", b"") + b"".join(msgs)
    f = FixFramer()
    out: list[bytes] = []
    pos = 0
    for c in cuts:
        out += f.feed(stream[pos : pos + c])
        pos += c
    out += f.feed(stream[pos:])
    assert out[-5:] == msgs


def test_timestamps_utc_milliseconds() -> None:
    ns = 1_767_225_600_123_456_789
    assert utc_timestamp(ns) == b"20260101-00:00:00.123"
    assert parse_utc_timestamp(b"20260101-00:00:00.123") == 1_767_225_600_123_000_000
    assert parse_utc_timestamp(b"20260101-00:00:00") == 1_767_225_600_000_000_000
    assert parse_utc_timestamp(b"20260101-00:00:00.123456") == 1_767_225_600_123_456_000
    assert parse_utc_timestamp(b"2026-01-01T00:00") is None
    assert parse_utc_timestamp(b"20261301-00:00:00") is None


def test_mask_secrets() -> None:
    raw = build("FIX.4.4", "A", 1, "A", "B", [(98, 0), (108, 30), (553, "u"), (554, "hunter2"), (925, "new-pw")])
    text = mask(raw)
    assert "hunter2" not in text and "new-pw" not in text
    assert "|554=***|" in text and "|925=***|" in text and "|553=u|" in text


def test_message_builder_and_simplefix_conversion() -> None:
    m = Message("D", [(11, "a"), (38, 10), (44, 1.5)])
    m.set(38, 20).append(59, True)
    assert m.get(38) == b"20" and m.get(59) == b"Y" and 11 in m
    assert m.body() == b"11=a\x0138=20\x0144=1.5\x0159=Y\x01"
    sf = simplefix.FixMessage()
    sf.append_pair(8, "FIX.4.4")
    sf.append_pair(35, "D")
    sf.append_pair(34, 99)
    sf.append_pair(11, "x")
    conv = from_simplefix(sf)
    assert conv.msg_type == "D" and conv.fields == [(11, b"x")]
