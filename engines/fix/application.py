"""The application side of a FIX engine: callbacks mirroring QuickFIX's ``Application``.

Subclass :class:`Application` and pass it to an :class:`~engines.fix.initiator.Initiator` or
:class:`~engines.fix.acceptor.Acceptor`. Every callback may be a plain function or a coroutine
function; the session awaits coroutines. Callbacks run in the session's reader task, in order,
so a slow callback delays the session (hand long work to another task).

* ``on_create(session)`` — the session object was created (once, before any connection).
* ``on_logon(session)`` / ``on_logout(session)`` — the session became ACTIVE / left ACTIVE.
* ``to_admin(msg, session)`` — an outbound admin message (``msg`` is a mutable
  :class:`~engines.fix.message.Message`; add fields to a Logon here, e.g. 553/554, if not configured).
* ``from_admin(msg, session)`` — an inbound admin message (a parsed
  :class:`~engines.fix.message.FixMessage`); raise :class:`~engines.fix.errors.RejectLogon` on a Logon
  to refuse it.
* ``to_app(msg, session)`` — an outbound application message, also when it is replayed for a
  ResendRequest (then ``msg`` carries 43=Y); raise :class:`~engines.fix.errors.DoNotSend` to drop it.
* ``from_app(msg, session)`` — an inbound application message, after sequence checks and validation.
  The default raises :class:`~engines.fix.errors.UnsupportedMessageType`, which the session answers
  with a BusinessMessageReject (380=3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engines.fix.errors import UnsupportedMessageType

if TYPE_CHECKING:
    from engines.fix.message import FixMessage, Message
    from engines.fix.session import Session


class Application:
    """Default callbacks: accept every admin message, refuse every application message."""

    def on_create(self, session: Session) -> Any:
        return None

    def on_logon(self, session: Session) -> Any:
        return None

    def on_logout(self, session: Session) -> Any:
        return None

    def to_admin(self, msg: Message, session: Session) -> Any:
        return None

    def from_admin(self, msg: FixMessage, session: Session) -> Any:
        return None

    def to_app(self, msg: Message, session: Session) -> Any:
        return None

    def from_app(self, msg: FixMessage, session: Session) -> Any:
        raise UnsupportedMessageType(msg.msg_type)
