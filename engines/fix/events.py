"""FIX session events on the desk bus (see docs/architecture.md, interfaces.md).

Session ids are strings ``"FIX.4.4:SENDER->TARGET"`` (:meth:`engines.fix.session.SessionID.__str__`).
State changes and logged messages are lossless; statistics are conflated per session (~1 Hz).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from engines.events import Event


class SessionState(enum.StrEnum):
    """The session state machine (PyFixMsg Plus design)."""

    DISCONNECTED = "DISCONNECTED"
    CONNECTING = "CONNECTING"
    LOGON_IN_PROGRESS = "LOGON_IN_PROGRESS"
    ACTIVE = "ACTIVE"
    LOGOUT_IN_PROGRESS = "LOGOUT_IN_PROGRESS"
    RECONNECTING = "RECONNECTING"


@dataclass(frozen=True, slots=True, kw_only=True)
class FixSessionState(Event):
    """A session changed state (lossless)."""

    session: str
    state: SessionState
    role: str  # "initiator" | "acceptor"
    reason: str = ""
    KEY_FIELD: ClassVar[str | None] = "session"


@dataclass(frozen=True, slots=True, kw_only=True)
class FixSessionStats(Event):
    """Counters of one session, published about once a second (conflated per session)."""

    session: str
    state: SessionState
    next_sender_seq: int
    next_target_seq: int
    last_heartbeat_ts: int  # ns since epoch of the last Heartbeat received (0 = none yet)
    msgs_in: int
    msgs_out: int
    rate_in: float  # messages/s over the last interval
    rate_out: float
    errors: int  # garbled frames, rejects sent, protocol violations
    KEY_FIELD: ClassVar[str | None] = "session"
    CONFLATE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class FixMessageLogged(Event):
    """One message in or out, for the console's message inspector (lossless).

    ``raw`` shows SOH as ``|`` and has secrets (554 Password, 925 NewPassword, …) masked as ``***``.
    """

    session: str
    direction: str  # "in" | "out"
    raw: str
    msg_type: str
    KEY_FIELD: ClassVar[str | None] = "session"
