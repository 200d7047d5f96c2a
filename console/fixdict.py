"""FIX field names for the message inspector.

Uses the FIX engine's data dictionary (``engines.fix.dictionary``, per begin string) and falls back
to a table of the common tags and message types for anything it does not know.
"""

from __future__ import annotations

from typing import Any

TAGS: dict[int, str] = {
    1: "Account", 6: "AvgPx", 8: "BeginString", 9: "BodyLength", 10: "CheckSum", 11: "ClOrdID",
    14: "CumQty", 17: "ExecID", 31: "LastPx", 32: "LastQty", 34: "MsgSeqNum", 35: "MsgType",
    36: "NewSeqNo", 37: "OrderID", 38: "OrderQty", 39: "OrdStatus", 40: "OrdType", 41: "OrigClOrdID",
    43: "PossDupFlag", 44: "Price", 45: "RefSeqNum", 49: "SenderCompID", 52: "SendingTime", 54: "Side",
    55: "Symbol", 56: "TargetCompID", 58: "Text", 59: "TimeInForce", 60: "TransactTime", 98: "EncryptMethod",
    108: "HeartBtInt", 112: "TestReqID", 122: "OrigSendingTime", 123: "GapFillFlag", 141: "ResetSeqNumFlag",
    150: "ExecType", 151: "LeavesQty", 371: "RefTagID", 372: "RefMsgType", 373: "SessionRejectReason",
    553: "Username", 554: "Password",
}

MSG_TYPES: dict[str, str] = {
    "0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "3": "Reject", "4": "SequenceReset",
    "5": "Logout", "8": "ExecutionReport", "9": "OrderCancelReject", "A": "Logon",
    "D": "NewOrderSingle", "F": "OrderCancelRequest", "G": "OrderCancelReplaceRequest",
    "H": "OrderStatusRequest", "V": "MarketDataRequest", "W": "MarketDataSnapshotFullRefresh",
    "X": "MarketDataIncrementalRefresh", "j": "BusinessMessageReject",
}

VALUES: dict[int, dict[str, str]] = {
    35: MSG_TYPES,
    39: {"0": "New", "1": "PartiallyFilled", "2": "Filled", "4": "Canceled", "8": "Rejected", "C": "Expired"},
    150: {"0": "New", "4": "Canceled", "5": "Replaced", "8": "Rejected", "C": "Expired", "F": "Trade"},
    54: {"1": "Buy", "2": "Sell"},
    40: {"1": "Market", "2": "Limit"},
    59: {"0": "Day", "1": "GTC", "3": "IOC", "4": "FOK"},
}


def _dictionary(begin_string: str) -> Any:
    try:
        from engines.fix.dictionary import default_dictionary

        return default_dictionary(begin_string)
    except Exception:
        return None


def field_name(tag: int, begin_string: str = "FIX.4.4") -> str:
    d = _dictionary(begin_string)
    if d is not None:
        name = d.field_name(tag)
        if name and name != str(tag):
            return name
    return TAGS.get(tag, "")


def value_meaning(tag: int, value: str, begin_string: str = "FIX.4.4") -> str:
    d = _dictionary(begin_string)
    if d is not None:
        meaning = d.message_name(value) if tag == 35 else d.enum_name(tag, value)
        if meaning and meaning != value:
            return meaning
    return VALUES.get(tag, {}).get(value, "")


def msg_type_name(msg_type: str, begin_string: str = "FIX.4.4") -> str:
    return value_meaning(35, msg_type, begin_string) or msg_type


def decode(raw: str) -> list[tuple[int, str, str, str]]:
    """``raw`` with "|" (or SOH) separators → [(tag, name, value, meaning)]."""
    pairs: list[tuple[int, str]] = []
    for part in raw.replace("\x01", "|").split("|"):
        tag_s, sep, value = part.partition("=")
        if sep and tag_s.isdigit():
            pairs.append((int(tag_s), value))
    bs = next((v for t, v in pairs if t == 8), "FIX.4.4")
    return [(tag, field_name(tag, bs), value, value_meaning(tag, value, bs)) for tag, value in pairs]
