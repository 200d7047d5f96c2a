"""FIX field names for the message inspector.

Uses the FIX engine's dictionary (``engines.fix.dictionary``) when it is importable and falls back to
a table of the common tags and message types, so the inspector is useful either way.
"""

from __future__ import annotations

from typing import Any

TAGS: dict[int, str] = {
    1: "Account", 6: "AvgPx", 8: "BeginString", 9: "BodyLength", 10: "CheckSum", 11: "ClOrdID",
    14: "CumQty", 17: "ExecID", 20: "ExecTransType", 31: "LastPx", 32: "LastQty", 34: "MsgSeqNum",
    35: "MsgType", 36: "NewSeqNo", 37: "OrderID", 38: "OrderQty", 39: "OrdStatus", 40: "OrdType",
    41: "OrigClOrdID", 43: "PossDupFlag", 44: "Price", 45: "RefSeqNum", 49: "SenderCompID",
    52: "SendingTime", 54: "Side", 55: "Symbol", 56: "TargetCompID", 58: "Text", 59: "TimeInForce",
    60: "TransactTime", 97: "PossResend", 98: "EncryptMethod", 102: "CxlRejReason", 103: "OrdRejReason",
    108: "HeartBtInt", 112: "TestReqID", 122: "OrigSendingTime", 123: "GapFillFlag", 141: "ResetSeqNumFlag",
    150: "ExecType", 151: "LeavesQty", 262: "MDReqID", 263: "SubscriptionRequestType", 264: "MarketDepth",
    268: "NoMDEntries", 269: "MDEntryType", 270: "MDEntryPx", 271: "MDEntrySize", 371: "RefTagID",
    372: "RefMsgType", 373: "SessionRejectReason", 434: "CxlRejResponseTo", 553: "Username",
    554: "Password", 789: "NextExpectedMsgSeqNum",
}

MSG_TYPES: dict[str, str] = {
    "0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "3": "Reject", "4": "SequenceReset",
    "5": "Logout", "8": "ExecutionReport", "9": "OrderCancelReject", "A": "Logon",
    "D": "NewOrderSingle", "F": "OrderCancelRequest", "G": "OrderCancelReplaceRequest",
    "H": "OrderStatusRequest", "V": "MarketDataRequest", "W": "MarketDataSnapshotFullRefresh",
    "X": "MarketDataIncrementalRefresh", "Y": "MarketDataRequestReject", "j": "BusinessMessageReject",
}

VALUES: dict[int, dict[str, str]] = {
    35: MSG_TYPES,
    39: {"0": "New", "1": "PartiallyFilled", "2": "Filled", "4": "Canceled", "5": "Replaced",
         "6": "PendingCancel", "8": "Rejected", "A": "PendingNew", "C": "Expired", "E": "PendingReplace"},
    150: {"0": "New", "4": "Canceled", "5": "Replaced", "8": "Rejected", "C": "Expired", "F": "Trade",
          "I": "OrderStatus"},
    54: {"1": "Buy", "2": "Sell"},
    40: {"1": "Market", "2": "Limit"},
    59: {"0": "Day", "1": "GTC", "3": "IOC", "4": "FOK"},
}


def _engine_dictionary() -> Any:
    try:
        from engines.fix import dictionary  # type: ignore[attr-defined]
    except Exception:
        return None
    return dictionary


def field_name(tag: int) -> str:
    d = _engine_dictionary()
    if d is not None:
        for attr in ("field_name", "tag_name", "name_of"):
            fn = getattr(d, attr, None)
            if callable(fn):
                try:
                    name = fn(tag)
                except Exception:
                    name = None
                if name:
                    return str(name)
    return TAGS.get(tag, "")


def value_meaning(tag: int, value: str) -> str:
    d = _engine_dictionary()
    if d is not None:
        fn = getattr(d, "value_name", None) or getattr(d, "enum_name", None)
        if callable(fn):
            try:
                meaning = fn(tag, value)
            except Exception:
                meaning = None
            if meaning:
                return str(meaning)
    return VALUES.get(tag, {}).get(value, "")


def msg_type_name(msg_type: str) -> str:
    return value_meaning(35, msg_type) or MSG_TYPES.get(msg_type, msg_type)


def decode(raw: str) -> list[tuple[int, str, str, str]]:
    """``raw`` with "|" (or SOH) separators → [(tag, name, value, meaning)]."""
    out: list[tuple[int, str, str, str]] = []
    for part in raw.replace("\x01", "|").split("|"):
        if not part or "=" not in part:
            continue
        tag_s, _, value = part.partition("=")
        try:
            tag = int(tag_s)
        except ValueError:
            continue
        out.append((tag, field_name(tag), value, value_meaning(tag, value)))
    return out
