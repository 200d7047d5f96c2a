"""A raw-socket FIX peer for session tests: sends hand-built bytes, reads frames off the wire.

It has no session logic at all, so every byte the engine under test sends is observed, and every
malformed or out-of-sequence message can be produced on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from engines.clock import ManualClock
from engines.fix.message import FixFramer, FixMessage, encode, parse, to_bytes, utc_timestamp

TIMEOUT = 5.0


class RawPeer:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        clock: ManualClock,
        *,
        begin: str = "FIX.4.4",
        sender: str = "CLI",
        target: str = "SRV",
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.clock = clock
        self.begin = begin
        self.sender = sender
        self.target = target
        self.seq = 1
        self.framer = FixFramer()
        self._frames: list[bytes] = []
        self.received: list[FixMessage] = []

    @classmethod
    async def connect(cls, port: int, clock: ManualClock, **kw: Any) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, clock, **kw)

    # --- building -----------------------------------------------------------------------------------
    def build(
        self,
        msg_type: str,
        fields: list[tuple[int, Any]] | tuple[tuple[int, Any], ...] = (),
        *,
        seq: int | None = None,
        begin: str | None = None,
        sender: str | None = None,
        target: str | None = None,
        sending_time: bytes | None = None,
        header: list[tuple[int, Any]] | tuple[tuple[int, Any], ...] = (),
    ) -> bytes:
        """Wire bytes; uses and advances the peer's own sequence number unless ``seq`` is given."""
        if seq is None:
            seq = self.seq
            self.seq += 1
        extra = b"".join(b"%d=%s\x01" % (t, to_bytes(v)) for t, v in header)
        body = b"".join(b"%d=%s\x01" % (t, to_bytes(v)) for t, v in fields)
        return encode(
            (begin or self.begin).encode(),
            msg_type.encode(),
            seq,
            (sender or self.sender).encode(),
            (target or self.target).encode(),
            sending_time if sending_time is not None else self.now(),
            body,
            extra,
        )

    def now(self, offset: float = 0.0) -> bytes:
        return utc_timestamp(self.clock.time_ns() + int(offset * 1e9))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, msg_type: str, fields: Any = (), **kw: Any) -> bytes:
        raw = self.build(msg_type, fields, **kw)
        await self.send_raw(raw)
        return raw

    async def logon(self, hb: int = 30, extra: Any = (), **kw: Any) -> FixMessage:
        await self.send("A", [(98, 0), (108, hb), *extra], **kw)
        reply = await self.read()
        assert reply.msg_type == "A", reply
        return reply

    # --- reading ------------------------------------------------------------------------------------
    async def read(self, timeout: float = TIMEOUT) -> FixMessage:
        async with asyncio.timeout(timeout):
            while not self._frames:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("peer connection closed")
                self._frames.extend(self.framer.feed(data))
        msg = parse(self._frames.pop(0))
        self.received.append(msg)
        return msg

    async def expect(self, msg_type: str, timeout: float = TIMEOUT) -> FixMessage:
        msg = await self.read(timeout)
        assert msg.msg_type == msg_type, f"expected 35={msg_type}, got {msg!r}"
        return msg

    async def expect_closed(self, timeout: float = TIMEOUT) -> bytes:
        """Wait for EOF; returns any bytes that arrived before it (frames already read excluded)."""
        rest = b""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionError:
                    break
                if not data:
                    break
                rest += data
        return rest

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def tags(msg: FixMessage, *wanted: int) -> dict[int, str | None]:
    """{tag: value-as-str} for the asserted tags (None when absent)."""
    return {t: msg.get_str(t) for t in wanted}
