"""The framer's and parser's fast paths give exactly what the plain reference code gives.

``ReferenceFramer.feed`` is the framer as it was before the back-to-back fast path (commit 808431d): one
regex shortcut, then the general field-by-field checks. Streams of valid, garbled, oversized and
non-ASCII messages with garbage between them, cut into random reads, must give the same frames, the
same garbled reports, the same garbage count and the same pending tail through both. ``ref_get`` is
the find-based ``FixMessage.get`` of that commit.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.fix.message import _FRAME_HEAD, SOH, FixFramer, _needle, build, byte_sum, parse

_TRAILER_SUM = sum(b"10=\x01")


class ReferenceFramer:
    """The framer of 808431d (BodyLength, CheckSum, first three fields, resync on ``8=FIX``)."""

    def __init__(self, max_body: int = 1 << 20) -> None:
        self._buf = b""
        self.bad: list[tuple[bytes, str]] = []
        self.garbage_bytes = 0
        self.max_body = max_body

    def _bad(self, frame: bytes, reason: str) -> None:
        self.bad.append((frame, reason))

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else bytes(data)
        out: list[bytes] = []
        n = len(buf)
        pos = 0
        find = buf.find
        match = _FRAME_HEAD.match
        while pos < n:
            start = pos if buf.startswith(b"8=FIX", pos) else find(b"8=FIX", pos)
            if start < 0:
                # Keep a tail that may be the beginning of "8=FIX".
                keep = max(pos, n - 4)
                self.garbage_bytes += keep - pos
                pos = keep
                break
            if start > pos:
                self.garbage_bytes += start - pos
            # Fast path: a complete, well-formed frame (one regex match for 8, 9 and the start of 35).
            m = match(buf, start)
            if m is not None:
                end = m.end() - 3 + int(m.group(1))
                if n >= end + 7 and buf[end - 1 : end + 3] == b"\x0110=" and buf[end + 6 : end + 7] == SOH:
                    frame = buf[start : end + 7]
                    cks = frame[-4:-1]
                    if cks.isdigit() and int(cks) == (
                        (byte_sum(frame) - _TRAILER_SUM - cks[0] - cks[1] - cks[2]) & 255
                    ):
                        out.append(frame)
                        pos = end + 7
                        continue
            e1 = find(SOH, start)
            if e1 < 0:
                if n - start > 32:
                    self._bad(buf[start : start + 32], "BeginString not terminated")
                    pos = start + 1
                    continue
                pos = start
                break
            if buf[e1 + 1 : e1 + 3] != b"9=":
                if n - e1 < 3:
                    pos = start
                    break
                self._bad(buf[start : e1 + 1], "second field is not BodyLength (9)")
                pos = start + 1
                continue
            e2 = find(SOH, e1 + 3)
            if e2 < 0:
                if n - e1 > 16:
                    self._bad(buf[start : e1 + 16], "BodyLength not terminated")
                    pos = start + 1
                    continue
                pos = start
                break
            length = buf[e1 + 3 : e2]
            if not length.isdigit() or int(length) > self.max_body:
                self._bad(buf[start : e2 + 1], "bad BodyLength")
                pos = start + 1
                continue
            body = e2 + 1
            end = body + int(length)  # index of "10="
            if n < end + 7:
                # Incomplete, unless a complete trailer followed by a new message start shows that
                # the declared length runs past the real end (bad BodyLength).
                k = find(b"\x0110=", body)
                if 0 <= k < end - 1 and buf[k + 7 : k + 8] == SOH:
                    nxt = find(b"8=FIX", k + 8)
                    if nxt >= 0:
                        self._bad(buf[start : k + 8], "bad BodyLength")
                        pos = nxt
                        continue
                if n - body > self.max_body:
                    self._bad(buf[start:n], "bad BodyLength")
                    pos = n
                    continue
                pos = start
                break
            if buf[end : end + 3] != b"10=" or buf[end + 6 : end + 7] != SOH or buf[end - 1 : end] != SOH:
                self._bad(buf[start : end + 7], "bad BodyLength")
                pos = start + 1
                continue
            if buf[body : body + 3] != b"35=":
                self._bad(buf[start : end + 7], "third field is not MsgType (35)")
                pos = end + 7
                continue
            frame = buf[start : end + 7]
            cks = frame[-4:-1]
            # The whole frame's sum, less the trailer's bytes.
            if not cks.isdigit() or int(cks) != ((byte_sum(frame) - _TRAILER_SUM - sum(cks)) & 255):
                self._bad(frame, "bad CheckSum")
                pos = end + 7
                continue
            out.append(frame)
            pos = end + 7
        self._buf = buf[pos:] if pos < n else b""
        return out


ST = b"20260101-00:00:00.123"


def message(i: int, size: int = 0, high: bool = False, fill: bytes = b"x") -> bytes:
    """An ExecutionReport; ``size`` pads Text (58) to make it long, ``high`` puts bytes >= 0x80 in it."""
    text = fill * size
    if high:
        text = bytes((0x80 + (k * 37) % 0x7F) for k in range(max(size, 1)))
    return build("FIX.4.4", "8", i, "SRV", "CLI", [(37, f"o{i}"), (11, f"c{i}"), (150, "0"), (39, "0"),
                                                  (55, "BTC-USD"), (54, 1), (38, 10), (58, text), (1, "acct")],
                 sending_time=ST)


def garble(raw: bytes, how: int) -> bytes:
    """One of the ways a frame goes wrong on the wire."""
    if how == 0:  # CheckSum off by one
        return raw[:-4] + b"%03d\x01" % ((int(raw[-4:-1]) + 1) % 256)
    if how == 9:  # off by 15: what a sum wrapped once by Adler's modulus (65521 = 15 mod 256) would accept
        return raw[:-4] + b"%03d\x01" % ((int(raw[-4:-1]) + 15) % 256)
    if how == 1:  # CheckSum digits not a byte value
        return raw[:-4] + b"999\x01"
    if how == 2:  # BodyLength one too long
        length = parse(raw).get(9) or b"0"
        return raw.replace(b"\x019=" + length + b"\x01", b"\x019=%d\x01" % (int(length) + 1), 1)
    if how == 3:  # BodyLength one too short
        length = parse(raw).get(9) or b"0"
        return raw.replace(b"\x019=" + length + b"\x01", b"\x019=%d\x01" % (int(length) - 1), 1)
    if how == 4:  # second field not 9
        return raw.replace(b"\x019=", b"\x0135=8\x019=", 1)
    if how == 5:  # third field not 35 (CheckSum and BodyLength right)
        body = b"49=A\x0156=B\x0134=1\x01"
        head = b"8=FIX.4.4\x019=%d\x01%s" % (len(body), body)
        return head + b"10=%03d\x01" % (byte_sum(head) & 255)
    if how == 6:  # truncated (the rest never comes)
        return raw[: len(raw) // 2]
    if how == 7:  # SOH of the trailer replaced
        return raw[:-1] + b"|"
    return raw[:5] + b"\x00" + raw[6:]  # BeginString damaged


def run_both(stream: bytes, cuts: list[int], max_body: int = 1 << 20) -> None:
    bad: list[tuple[bytes, str]] = []
    fast = FixFramer(on_garbled=lambda raw, why: bad.append((raw, why)), max_body=max_body)
    ref = ReferenceFramer(max_body=max_body)
    got: list[bytes] = []
    want: list[bytes] = []
    pos = 0
    for c in [*cuts, len(stream)]:
        piece = stream[pos : pos + c]
        pos += c
        got += fast.feed(piece)
        want += ref.feed(piece)
        assert fast.pending == len(ref._buf)
    assert got == want
    assert bad == ref.bad and fast.garbled == len(ref.bad)
    assert fast.garbage_bytes == ref.garbage_bytes


piece = st.one_of(
    st.tuples(st.just("ok"), st.integers(1, 10_000), st.sampled_from([0, 0, 0, 200, 300, 600]), st.booleans()),
    st.tuples(st.just("bad"), st.integers(1, 10_000), st.integers(0, 8), st.booleans()),
    st.tuples(st.just("junk"), st.binary(max_size=24), st.sampled_from([b"", b"8=F", b"8=FIX", b"8=FIX.4.4\x01"]),
              st.booleans()),
)


def build_stream(pieces: list[tuple], ok: Callable[[int, int, int], bytes] | None = None) -> bytes:
    """The pieces' bytes: ``ok`` makes a well-formed frame from an "ok" piece's three values (default:
    ``message(a, b, high=c)``); "bad" pieces are garbled messages, anything else junk."""
    out = []
    for kind, a, b, c in pieces:
        if kind == "ok":
            out.append(message(a, b, high=c) if ok is None else ok(a, b, c))
        elif kind == "bad":
            out.append(garble(message(a, 40 if c else 0), b))
        else:
            out.append(a + b)
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(piece, max_size=12), st.lists(st.integers(1, 700), max_size=12))
def test_fast_framer_matches_the_reference(pieces: list[tuple], cuts: list[int]) -> None:
    run_both(build_stream(pieces), cuts)


@settings(max_examples=100, deadline=None)
@given(st.lists(piece, max_size=8), st.lists(st.integers(1, 50), max_size=30))
def test_fast_framer_matches_the_reference_on_small_reads_and_a_small_max_body(pieces, cuts) -> None:
    run_both(build_stream(pieces), cuts, max_body=250)


def test_back_to_back_valid_stream_in_random_reads() -> None:
    msgs = [message(i, size=(i * 53) % 700, high=i % 7 == 0) for i in range(1, 301)]
    stream = b"".join(msgs)
    rng = random.Random(11)
    cuts = [rng.randint(1, 4_000) for _ in range(200)]
    run_both(stream, cuts)
    f = FixFramer()
    assert f.feed(stream) == msgs and f.pending == 0 and f.garbled == 0


def test_checksum_fast_path_boundaries() -> None:
    """Frames around the sizes where the one-call CheckSum stops being exact (256 bytes of any value,
    515 of ASCII) are judged like the reference judges them, good and off by one."""
    for size in range(150, 700, 1):
        for high, fill in ((False, b"x"), (True, b"x"), (False, b"\x7f")):
            raw = message(1, size, high, fill)
            if not 250 <= len(raw) <= 262 and not 505 <= len(raw) <= 525 and size % 7:
                continue
            for frame in (raw, garble(raw, 0), garble(raw, 9)):
                run_both(frame + message(2), [])
                run_both(frame, [len(frame) - 1])


def ref_get(raw: bytes, tag: int) -> bytes | None:
    i = raw.find(_needle(tag))
    if i < 0:
        if tag == 8 and raw.startswith(b"8="):
            return raw[2 : raw.find(SOH)]
        return None
    i += len(_needle(tag))
    return raw[i : raw.find(SOH, i)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12_000), st.binary(max_size=6).map(lambda b: b.replace(SOH, b""))),
                max_size=12))
def test_get_matches_the_find_based_get(fields: list[tuple[int, bytes]]) -> None:
    raw = build("FIX.4.4", "D", 1, "A", "B", fields, sending_time=ST)
    m = parse(raw)
    for tag in {8, 9, 10, 34, 35, 1, 11, 111, 12_001, *(t for t, _ in fields)}:
        assert m.get(tag) == ref_get(raw, tag)
        assert (tag in m) == (raw.find(_needle(tag)) >= 0)


def test_parse_sets_every_slot() -> None:
    m = parse(message(3))
    assert m.msg_type == "8" and m.raw == message(3) and m.pairs()[2] == (35, b"8")
    assert parse(build("FIX.4.4", "XZ", 1, "A", "B", [])).msg_type == "XZ"
    assert _FRAME_HEAD.match(message(3)) is not None
    assert parse(b"8=FIX.4.4\x019=5\x0135=\x0110=000\x01").msg_type == ""
    with pytest.raises(ValueError, match="no MsgType"):
        parse(b"8=FIX.4.4\x019=5\x0149=A\x0110=000\x01")
