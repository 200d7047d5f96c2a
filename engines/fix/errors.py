"""Reject reasons and the exceptions application callbacks raise to steer the session.

Mirrors QuickFIX: ``from_app`` raising :class:`UnsupportedMessageType` makes the session answer with a
BusinessMessageReject (35=j, 380=3); :class:`FieldNotFound` / :class:`IncorrectTagValue` give a session
Reject (35=3) with the matching SessionRejectReason (373); ``from_admin`` raising :class:`RejectLogon`
refuses a Logon; ``to_app`` raising :class:`DoNotSend` drops an outbound message (and turns a replay into
a gap fill).
"""

from __future__ import annotations

from dataclasses import dataclass


class SessionRejectReason:
    """Values of tag 373 (FIX 4.4; FIX 4.2 defines 0-11)."""

    INVALID_TAG_NUMBER = 0
    REQUIRED_TAG_MISSING = 1
    TAG_NOT_DEFINED_FOR_MESSAGE_TYPE = 2
    UNDEFINED_TAG = 3
    TAG_SPECIFIED_WITHOUT_A_VALUE = 4
    VALUE_IS_INCORRECT = 5
    INCORRECT_DATA_FORMAT_FOR_VALUE = 6
    DECRYPTION_PROBLEM = 7
    SIGNATURE_PROBLEM = 8
    COMPID_PROBLEM = 9
    SENDINGTIME_ACCURACY_PROBLEM = 10
    INVALID_MSGTYPE = 11
    XML_VALIDATION_ERROR = 12
    TAG_APPEARS_MORE_THAN_ONCE = 13
    TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER = 14
    REPEATING_GROUP_FIELDS_OUT_OF_ORDER = 15
    INCORRECT_NUMINGROUP_COUNT_FOR_REPEATING_GROUP = 16
    NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER = 17
    OTHER = 99

    #: Highest reason each version defines; above it the Reject carries the reason in Text (58) only.
    MAX_FOR_VERSION = {"FIX.4.2": 11, "FIX.4.4": 99}


class BusinessRejectReason:
    """Values of tag 380."""

    OTHER = 0
    UNKNOWN_ID = 1
    UNKNOWN_SECURITY = 2
    UNSUPPORTED_MESSAGE_TYPE = 3
    APPLICATION_NOT_AVAILABLE = 4
    CONDITIONALLY_REQUIRED_FIELD_MISSING = 5
    NOT_AUTHORIZED = 6


@dataclass(frozen=True, slots=True)
class RejectInfo:
    """What a validator found wrong with a message: the session answers with a Reject (35=3).

    ``reason`` is the SessionRejectReason (373), ``ref_tag`` goes to RefTagID (371), ``text`` to Text (58).
    """

    reason: int
    ref_tag: int | None = None
    text: str = ""


class FixError(Exception):
    """Base of the FIX engine's exceptions."""


class SessionNotActive(FixError):
    """Raised by ``Session.send`` when the session is not logged on."""


class RejectLogon(FixError):
    """Raise from ``Application.from_admin`` on a Logon to refuse it (Logout with this text, disconnect)."""


class DoNotSend(FixError):
    """Raise from ``Application.to_app`` to drop an outbound message (a replay becomes a gap fill)."""


class UnsupportedMessageType(FixError):
    """Raise from ``Application.from_app``: answered with BusinessMessageReject 380=3."""


class FieldNotFound(FixError):
    """Raise from ``Application.from_app``: answered with Reject 373=1 (required tag missing)."""

    def __init__(self, tag: int, text: str = "") -> None:
        super().__init__(text or f"required tag {tag} missing")
        self.tag = tag


class IncorrectTagValue(FixError):
    """Raise from ``Application.from_app``: answered with Reject 373=5 (value is incorrect)."""

    def __init__(self, tag: int, text: str = "") -> None:
        super().__init__(text or f"value of tag {tag} is incorrect")
        self.tag = tag


class BusinessReject(FixError):
    """Raise from ``Application.from_app``: answered with BusinessMessageReject (35=j) with this reason."""

    def __init__(self, reason: int, text: str = "", ref_id: str = "") -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.ref_id = ref_id
