"""The parse round's fast paths (session 4) give exactly what the plain code gives.

* The framer's frame-head table (``_HEADS``: head bytes -> frame length, instead of a regex match per
  frame): streams mixing BeginStrings and 1- to 4-digit BodyLengths, garbled frames and junk, cut into
  random reads, give the same frames, garbled reports, garbage count and pending tail as the reference
  framer of ``test_fix_framer_fast`` (no table); also with the table full (cleared) and one frame per read.
* ``parse`` (MsgType by chained partitions and a table) and ``get`` (chained partitions, the empty case
  apart) against find-based references on random bytes.
* ``split_fields`` (one C-level pass when every field is ``tag=value`` with no ``=`` in the value) against
  the regex on random and garbled input.
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engines.fix.message as fm
from engines.fix.message import SOH, FixFramer, _needle, byte_sum, parse, split_fields
from tests.test_fix_framer_fast import build_stream as framer_stream
from tests.test_fix_framer_fast import garble, message, run_both

BEGINS = [b"FIX.4.2", b"FIX.4.4", b"FIXT.1.1"]


def frame(begin: bytes, body: bytes) -> bytes:
    """A well-formed frame around ``body`` (which starts with ``35=`` and ends with SOH)."""
    head = b"8=%s\x019=%d\x01%s" % (begin, len(body), body)
    return head + b"10=%03d\x01" % (byte_sum(head) & 255)


def body(i: int, size: int) -> bytes:
    """A body of about ``size`` bytes (minimum 5: ``35=0<SOH>``), so BodyLength has 1 to 4 digits."""
    b = b"35=%s\x01" % (b"0", b"8", b"D", b"AE")[i % 4]
    pad = size - len(b) - 4
    return b + (b"58=%s\x01" % (b"t" * pad) if pad > 0 else b"")


piece = st.one_of(
    st.tuples(st.just("ok"), st.integers(0, 2), st.integers(5, 1500), st.integers(0, 3)),
    st.tuples(st.just("bad"), st.integers(1, 10_000), st.integers(0, 8), st.booleans()),
    st.tuples(st.just("junk"), st.binary(max_size=16), st.sampled_from([b"", b"8=FIX", b"8=FIX.4.4\x019="]),
              st.booleans()),
)


def build_stream(pieces: list[tuple]) -> bytes:
    """Mixed BeginStrings and BodyLengths for the "ok" pieces; the rest as in test_fix_framer_fast."""
    return framer_stream(pieces, ok=lambda a, b, c: frame(BEGINS[a], body(c, b)))


@settings(max_examples=300, deadline=None)
@given(st.lists(piece, max_size=14), st.lists(st.integers(1, 900), max_size=12))
def test_head_table_framer_matches_the_reference(pieces: list[tuple], cuts: list[int]) -> None:
    run_both(build_stream(pieces), cuts)


@settings(max_examples=100, deadline=None)
@given(st.lists(piece, max_size=10), st.lists(st.integers(1, 40), max_size=40))
def test_head_table_framer_matches_the_reference_on_small_reads(pieces: list[tuple], cuts: list[int]) -> None:
    run_both(build_stream(pieces), cuts, max_body=300)


def test_one_frame_per_read_and_a_full_table() -> None:
    rng = random.Random(4)
    frames = [frame(BEGINS[rng.randrange(3)], body(i, rng.choice([5, 9, 60, 300, 2000]))) for i in range(400)]
    stream = b"".join(frames)
    run_both(stream, [len(f) for f in frames])  # one frame per read: the head length carries over reads
    fm._HEADS.update({b"8=FIX.4.4\x019=%d\x0135=" % (100_000 + k): 1 for k in range(4096)})  # full
    f = FixFramer()
    assert f.feed(stream) == frames and f.garbled == 0 and f.pending == 0
    assert len(fm._HEADS) < 4096  # cleared when full, then refilled from the regex
    run_both(stream, [rng.randint(1, 3000) for _ in range(40)])


def test_a_known_head_followed_by_a_wrong_frame_goes_to_the_general_path() -> None:
    """Each garbled frame comes after a good frame of the same BodyLength (its head up to BodyLength in the
    table), and after one of the same BeginString and digits count: the general path still judges it."""
    good = frame(b"FIX.4.4", body(1, 300))
    for how in range(9):
        for size in (300, 40, 18, 60):
            bad = garble(message(7, size) if size != 300 else good, how)
            m = re.match(rb"8=FIX.4.4\x019=(\d+)\x01", bad)
            same = frame(b"FIX.4.4", body(how, int(m[1]))) if m and int(m[1]) >= 5 else good
            for stream in (same + bad + good, good + bad + same, same + bad):
                run_both(stream, [])
                run_both(stream, [len(same) + 3])
                run_both(stream, [len(stream) - 2])


# --- parse and get ----------------------------------------------------------------------------------


def ref_msg_type(raw: bytes) -> str:
    i = raw.find(b"\x0135=")
    if i < 0:
        raise ValueError("no MsgType (35)")
    j = raw.find(SOH, i + 4)
    return raw[i + 4 : j if j >= 0 else len(raw)].decode("latin-1")


def ref_get(raw: bytes, tag: int) -> bytes | None:
    i = raw.find(_needle(tag))
    if i < 0:
        if tag == 8 and raw.startswith(b"8="):
            return raw[2 : raw.find(SOH)]
        return None
    i += len(_needle(tag))
    j = raw.find(SOH, i)
    return raw[i : j if j >= 0 else len(raw)]


fix_bytes = st.lists(st.sampled_from([b"\x01", b"=", b"35=", b"\x0135=", b"8=", b"34", b"1", b"0", b"D", b"AE",
                                      b"x", b"\x0134=", b"\x018=", b"\xff", b"9=12"]), max_size=30).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(fix_bytes)
def test_parse_and_get_match_the_find_based_references(raw: bytes) -> None:
    try:
        want = ref_msg_type(raw)
    except ValueError:
        with pytest.raises(ValueError, match="no MsgType"):
            parse(raw)
        return
    m = parse(raw)
    assert m.msg_type == want and m.raw is raw and m.pairs() == by_regex(raw)
    for tag in (8, 9, 34, 35, 1, 0, 10, 1300):
        assert m.get(tag) == ref_get(raw, tag)
        assert (tag in m) == (raw.find(_needle(tag)) >= 0)


def test_parse_never_caches_an_empty_msg_type() -> None:
    assert parse(b"8=FIX.4.4\x019=5\x0135=\x0110=000\x01").msg_type == ""
    assert b"" not in fm._MSG_TYPES
    with pytest.raises(ValueError, match="no MsgType") as e:
        parse(b"8=FIX.4.4\x019=5\x0149=A\x0110=000\x01")
    assert e.value.__context__ is None


# --- split_fields -------------------------------------------------------------------------------------

_FIELD_RE = re.compile(rb"(\d+)=([^\x01]*)\x01")


def by_regex(raw: bytes) -> list[tuple[int, bytes]]:
    return [(int(t), v) for t, v in _FIELD_RE.findall(raw)]


@settings(max_examples=400, deadline=None)
@given(fix_bytes)
def test_split_fields_matches_the_regex_on_garbled_input(raw: bytes) -> None:
    assert split_fields(raw) == by_regex(raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"1", b"34", b"0034", b"9999", b"10000", b"", b"x1", b"0"]),
                          st.binary(max_size=5).map(lambda b: b.replace(b"\x01", b"")),
                          st.sampled_from([b"=", b"", b"=="])), max_size=12),
       st.booleans())
def test_split_fields_matches_the_regex_on_field_runs(fields: list[tuple[bytes, bytes, bytes]], tail: bool) -> None:
    raw = b"".join(t + e + v + b"\x01" for t, v, e in fields) + (b"" if tail else b"12=3")
    assert split_fields(raw) == by_regex(raw)


# --- mask -----------------------------------------------------------------------------------------------


def ref_mask(raw: bytes) -> str:
    if b"554=" in raw or b"925=" in raw or b"1402=" in raw or b"1404=" in raw:
        raw = fm._SECRET_RE.sub(rb"\1\2=***", raw)
    return raw.replace(SOH, b"|").decode("latin-1")


secret_bytes = st.lists(st.sampled_from([b"\x01", b"=", b"554=", b"925=", b"1402=", b"1404=", b"\x01554=", b"x",
                                         b"\x011404=", b"9", b"\xe9", b"4="]), max_size=20).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(secret_bytes)
def test_mask_matches_the_plain_check(raw: bytes) -> None:
    assert fm.mask(raw) == ref_mask(raw)
    assert fm.mask(b"8=FIX.4.4\x01554=secret\x0158=x\x01") == "8=FIX.4.4|554=***|58=x|"
