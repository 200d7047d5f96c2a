"""The FIX data dictionary: loading QuickFIX-format XML, validation reject reasons, decoding for people."""

from __future__ import annotations

import pytest

from engines.fix.dictionary import (
    DataDictionary,
    DictionaryError,
    FieldView,
    Validator,
    default_dictionary,
    describe,
    field_name,
)
from engines.fix.errors import RejectInfo
from engines.fix.message import build, parse

TS = b"20260101-00:00:00.000"
NOS_BODY = [
    (11, "c1"),
    (453, 2),
    (448, "ALICE"),
    (447, "D"),
    (452, 3),
    (448, "DESK"),
    (447, "D"),
    (452, 1),
    (55, "BTC-USD"),
    (54, "1"),
    (60, TS),
    (38, "0.05"),
    (40, "2"),
    (44, "65000.5"),
    (59, "1"),
]


def nos(body: list[tuple[int, object]] = NOS_BODY, *, msg_type: str = "D", begin: str = "FIX.4.4") -> bytes:
    return build(begin, msg_type, 7, "CLIENT", "OPDESK", body, sending_time=TS)


def check(raw: bytes, begin: str = "FIX.4.4", **options: object) -> RejectInfo | None:
    return default_dictionary(begin).validator(**options).validate(parse(raw))


def edit(body: list[tuple[int, object]], tag: int, value: object) -> list[tuple[int, object]]:
    return [(t, value if t == tag else v) for t, v in body]


def drop(body: list[tuple[int, object]], tag: int) -> list[tuple[int, object]]:
    return [(t, v) for t, v in body if t != tag]


# --- loading -------------------------------------------------------------------------------------------


def test_desk_dictionaries_load_with_all_desk_messages() -> None:
    names = {
        "Logon", "Heartbeat", "TestRequest", "ResendRequest", "Reject", "SequenceReset", "Logout",
        "BusinessMessageReject", "NewOrderSingle", "OrderCancelRequest", "OrderCancelReplaceRequest",
        "ExecutionReport", "OrderCancelReject", "MarketDataRequest", "MarketDataSnapshotFullRefresh",
        "MarketDataIncrementalRefresh", "MarketDataRequestReject", "OrderStatusRequest",
    }  # fmt: skip
    for begin in ("FIX.4.4", "FIX.4.2"):
        dd = default_dictionary(begin)
        assert dd.begin_string == begin
        # OrderMassStatusRequest (AF) exists from FIX 4.3 on; the desk uses OrderMassCancelRequest/Report
        # (q/r) on 4.4 only.
        v44 = {"OrderMassStatusRequest", "OrderMassCancelRequest", "OrderMassCancelReport"}
        assert set(dd.messages_by_name) == names | (v44 if begin == "FIX.4.4" else set())
        assert dd.is_admin("A") and not dd.is_admin("D")
    d44, d42 = default_dictionary("FIX.4.4"), default_dictionary("FIX.4.2")
    # Components flattened: Instrument (Symbol required) and OrderQtyData (OrderQty required) in 4.4.
    assert d44.messages["D"].required == [11, 55, 54, 60, 38, 40]
    # 4.2 requires HandlInst on a NewOrderSingle; ExecTransType exists only in 4.2.
    assert d42.messages["D"].required == [11, 21, 55, 54, 60, 38, 40]
    assert 20 in d42.messages["8"].required and 20 not in d44.fields
    assert d42.field_name(32) == "LastShares" and d44.field_name(32) == "LastQty"
    assert d44.enum_name(150, "F") == "TRADE" and d42.enum_name(150, "F") == ""
    assert d42.enum_name(150, "1") == "PARTIAL_FILL"
    # Groups: the header's NoHops (4.4 only), MarketDataRequest's nested groups with their delimiters.
    assert 627 in d44.header.groups and 627 not in d42.header.groups
    md = d44.messages["V"]
    assert {k: g.delimiter for k, g in md.groups.items()} == {267: 269, 146: 55}


QUICKFIX_STYLE = """<fix type="FIX" major="4" minor="4" servicepack="0">
 <header>
  <field name="BeginString" required="Y"/><field name="BodyLength" required="Y"/>
  <field name="MsgType" required="Y"/><field name="SenderCompID" required="Y"/>
  <field name="TargetCompID" required="Y"/><field name="MsgSeqNum" required="Y"/>
  <field name="SendingTime" required="Y"/>
 </header>
 <messages>
  <message name="Widget" msgtype="U1" msgcat="app">
   <field name="WidgetID" required="Y"/>
   <component name="Legs" required="Y"/>
   <component name="Extras" required="N"/>
  </message>
 </messages>
 <trailer><field name="CheckSum" required="Y"/></trailer>
 <components>
  <component name="Legs">
   <group name="NoLegs" required="Y">
    <component name="Leg" required="Y"/>
    <group name="NoLegStips" required="N"><field name="StipType" required="Y"/><field name="StipValue" required="N"/></group>
   </group>
  </component>
  <component name="Leg"><field name="LegSymbol" required="Y"/><field name="LegSide" required="N"/></component>
  <component name="Extras"><field name="Note" required="Y"/></component>
 </components>
 <fields>
  <field number="8" name="BeginString" type="STRING"/><field number="9" name="BodyLength" type="LENGTH"/>
  <field number="35" name="MsgType" type="STRING"><value enum="U1" description="WIDGET"/></field>
  <field number="49" name="SenderCompID" type="STRING"/><field number="56" name="TargetCompID" type="STRING"/>
  <field number="34" name="MsgSeqNum" type="SEQNUM"/><field number="52" name="SendingTime" type="UTCTIMESTAMP"/>
  <field number="10" name="CheckSum" type="STRING"/>
  <field number="5001" name="WidgetID" type="INT"/><field number="5002" name="Note" type="STRING"/>
  <field number="555" name="NoLegs" type="NUMINGROUP"/><field number="600" name="LegSymbol" type="STRING"/>
  <field number="624" name="LegSide" type="CHAR"><value enum="1" description="BUY"/><value enum="2" description="SELL"/></field>
  <field number="683" name="NoLegStips" type="NUMINGROUP"/><field number="688" name="StipType" type="STRING"/>
  <field number="689" name="StipValue" type="STRING"/>
 </fields>
</fix>"""


def test_quickfix_xml_with_nested_components_and_groups() -> None:
    dd = DataDictionary.from_xml(QUICKFIX_STYLE)
    w = dd.messages["U1"]
    # An optional component contributes no required fields; a required one does.
    assert w.required == [5001, 555]
    legs = w.groups[555]
    assert legs.delimiter == 600 and legs.required == [600]
    assert legs.groups[683].delimiter == 688
    v = dd.validator()
    ok = build(
        "FIX.4.4",
        "U1",
        2,
        "A",
        "B",
        [(5001, 9), (555, 2), (600, "X"), (683, 1), (688, "T"), (600, "Y"), (624, 2)],
    )
    assert v.validate(parse(ok)) is None
    nested_bad = build("FIX.4.4", "U1", 2, "A", "B", [(5001, 9), (555, 1), (600, "X"), (683, 2), (688, "T")])
    assert v.validate(parse(nested_bad)) == RejectInfo(
        16, 683, "Incorrect NumInGroup count for repeating group: 683 (NoLegStips)=2, 1 entries"
    )
    missing_in_entry = build(
        "FIX.4.4", "U1", 2, "A", "B", [(5001, 9), (555, 1), (600, "X"), (683, 1), (689, "v")]
    )
    assert v.validate(parse(missing_in_entry)) == RejectInfo(
        15, 689, "Repeating group fields out of order: 689 (StipValue)"
    )


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<fix major='4' minor='4'><fields/></fix>x", "not valid XML"),
        ("<fox major='4' minor='4'/>", "root element is <fox>, expected <fix>"),
        ("<fix major='4'><fields/></fix>", "needs major= and minor="),
        ("<fix major='4' minor='4'/>", "no <fields> section"),
        (
            "<fix major='4' minor='4'><header><field name='Nope' required='Y'/></header><fields/></fix>",
            "'Nope' is used but not defined in <fields>",
        ),
        (
            "<fix major='4' minor='4'><messages><message name='M' msgtype='U'><component name='C'/></message>"
            "</messages><fields/></fix>",
            "unknown component 'C'",
        ),
    ],
)
def test_bad_dictionaries_are_refused_with_the_reason(xml: str, message: str) -> None:
    with pytest.raises(DictionaryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DataDictionary.from_xml(xml, source="test.xml")


def test_missing_file_is_a_dictionary_error(tmp_path) -> None:
    with pytest.raises(DictionaryError, match="cannot read FIX dictionary"):
        DataDictionary.load(tmp_path / "nope.xml")


# --- validation: one test per reject reason ----------------------------------------------------------------


def test_a_valid_new_order_single_passes() -> None:
    assert check(nos()) is None
    # 4.2 with HandlInst, without the 4.4-only Parties group.
    body42 = [(11, "c1"), (21, "1"), (55, "BTC-USD"), (54, "2"), (60, TS), (38, "1"), (40, "1")]
    assert check(nos(body42, begin="FIX.4.2"), "FIX.4.2") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # 0: a tag the dictionary does not define
        (nos([*NOS_BODY, (9999, "x")]), RejectInfo(0, 9999, "Invalid tag number: 9999")),
        # 1: required tag missing (Side)
        (nos(drop(NOS_BODY, 54)), RejectInfo(1, 54, "Required tag missing: 54 (Side)")),
        # 2: a defined tag that does not belong to this message type
        (
            nos([*NOS_BODY, (262, "md1")]),
            RejectInfo(2, 262, "Tag not defined for this message type: 262 (MDReqID) in NewOrderSingle"),
        ),
        # 4: tag without a value
        (nos(edit(NOS_BODY, 59, "")), RejectInfo(4, 59, "Tag specified without a value: 59 (TimeInForce)")),
        # 5: value outside the enum
        (nos(edit(NOS_BODY, 54, "9")), RejectInfo(5, 54, "Value is incorrect (out of range) for this tag: 54=9")),
        # 6: incorrect data format (a price that is not a number, a bad timestamp, a CHAR of two chars)
        (nos(edit(NOS_BODY, 44, "12a")), RejectInfo(6, 44, "Incorrect data format for value: 44=12a")),
        (
            nos(edit(NOS_BODY, 60, "20261301-00:00:00")),
            RejectInfo(6, 60, "Incorrect data format for value: 60=20261301-00:00:00"),
        ),
        (nos(edit(NOS_BODY, 40, "22")), RejectInfo(6, 40, "Incorrect data format for value: 40=22")),
        # 11: a MsgType the standard does not know
        (nos(msg_type="ZZ"), RejectInfo(11, 35, "Invalid MsgType: ZZ")),
        # 13: a tag outside a group appears twice
        (nos([*NOS_BODY, (38, "2")]), RejectInfo(13, 38, "Tag appears more than once: 38 (OrderQty)")),
        # 14: a header field after the body
        (nos([*NOS_BODY, (50, "trader")]), RejectInfo(14, 50, "Tag specified out of required order: 50 (SenderSubID)")),
        # 15: a group entry that does not start with its delimiter
        (
            nos([*NOS_BODY[:2], (447, "D"), (448, "X"), (452, 3), *NOS_BODY[8:]]),
            RejectInfo(15, 447, "Repeating group fields out of order: 447 (PartyIDSource)"),
        ),
        # 16: NumInGroup says 3, two entries follow
        (
            nos(edit(NOS_BODY, 453, 3)),
            RejectInfo(16, 453, "Incorrect NumInGroup count for repeating group: 453 (NoPartyIDs)=3, 2 entries"),
        ),
        # 16: NumInGroup says 1, two entries follow (the second entry's fields are then out of place)
        (
            nos(edit(NOS_BODY, 453, 1)),
            RejectInfo(16, 453, "Incorrect NumInGroup count for repeating group: 453 (NoPartyIDs)=1, 2 entries"),
        ),
    ],
    ids=["0-invalid-tag", "1-required", "2-not-in-message", "4-no-value", "5-enum", "6-price", "6-timestamp",
         "6-char", "11-msgtype", "13-repeated", "14-order", "15-group-order", "16-count-high", "16-count-low"],
)  # fmt: skip
def test_each_reject_reason(raw: bytes, expected: RejectInfo) -> None:
    assert check(raw) == expected


def test_group_entry_missing_a_required_field() -> None:
    md = [(262, "m1"), (263, "1"), (264, 1), (267, 2), (269, "0"), (269, "1"), (146, 1), (48, "X")]
    # The 146 group's delimiter is Symbol (55): an entry starting with SecurityID is out of order.
    assert check(nos(md, msg_type="V")) == RejectInfo(
        15, 48, "Repeating group fields out of order: 48 (SecurityID)"
    )
    md_ok = [*md[:-1], (55, "BTC-USD")]
    assert check(nos(md_ok, msg_type="V")) is None


def test_standard_but_unsupported_message_types_are_left_to_the_application() -> None:
    # A Quote (35=S) is standard FIX: the application answers with BusinessMessageReject 380=3.
    assert check(nos([(117, "q1"), (55, "X")], msg_type="S")) is None


def test_fix42_rules() -> None:
    body42 = [(11, "c1"), (21, "1"), (55, "BTC-USD"), (54, "2"), (60, TS), (38, "1"), (40, "1")]
    assert check(nos(drop(body42, 21), begin="FIX.4.2"), "FIX.4.2") == RejectInfo(
        1, 21, "Required tag missing: 21 (HandlInst)"
    )
    # Parties are not part of the desk's 4.2 dictionary.
    assert check(nos([*body42, (453, 0)], begin="FIX.4.2"), "FIX.4.2") == RejectInfo(
        0, 453, "Invalid tag number: 453"
    )
    # 4.2 ExecType 1 (partial fill) is valid in 4.2 and out of range in 4.4.
    er = [
        (37, "1"),
        (17, "e1"),
        (20, "0"),
        (150, "1"),
        (39, "1"),
        (55, "X"),
        (54, "1"),
        (151, 1),
        (14, 1),
        (6, 10),
    ]
    assert check(nos(er, msg_type="8", begin="FIX.4.2"), "FIX.4.2") is None
    er44 = [(t, v) for t, v in er if t != 20]
    assert check(nos(er44, msg_type="8")) == RejectInfo(
        5, 150, "Value is incorrect (out of range) for this tag: 150=1"
    )


def test_options() -> None:
    raw = nos([*NOS_BODY, (9999, "x")])
    assert check(raw, allow_unknown_fields=True) is None
    assert check(raw, allow_user_defined_fields=True) is None
    assert check(nos([*NOS_BODY, (4999, "x")]), allow_user_defined_fields=True) == RejectInfo(
        0, 4999, "Invalid tag number: 4999"
    )
    late_header = nos([*NOS_BODY, (50, "trader")])
    assert check(late_header, check_fields_out_of_order=False) is None
    bad_logon = build("FIX.4.4", "A", 1, "A", "B", [(98, 0), (108, "x")], sending_time=TS)
    assert check(bad_logon) == RejectInfo(6, 108, "Incorrect data format for value: 108=x")
    assert check(bad_logon, validate_admin=False) is None


def test_validator_accepts_pairs_and_raw_text() -> None:
    v = Validator(default_dictionary("FIX.4.4"))
    raw = nos(edit(NOS_BODY, 54, "9"))
    expected = RejectInfo(5, 54, "Value is incorrect (out of range) for this tag: 54=9")
    assert v.validate(parse(raw).pairs()) == expected
    assert v.validate(raw.replace(b"\x01", b"|").decode()) == expected
    assert v(parse(raw)) == expected


# --- names and decoding ---------------------------------------------------------------------------------


def test_field_names_and_describe() -> None:
    assert field_name(54) == "Side"
    assert field_name(32, "FIX.4.2") == "LastShares"
    assert field_name(424242) == "424242"
    logon = build(
        "FIX.4.4", "A", 1, "C", "S", [(98, 0), (108, 30), (553, "alice"), (554, "hunter22")], sending_time=TS
    )
    views = describe(parse(logon))
    assert views[2] == FieldView(35, "MsgType", "A", "LOGON", 0, "header")
    assert FieldView(554, "Password", "***", "", 0, "body") in views
    assert "hunter22" not in default_dictionary("FIX.4.4").format(logon)
    text = default_dictionary("FIX.4.4").format(nos())
    lines = text.splitlines()
    assert "54 Side = 1 (BUY)" in lines
    assert "453 NoPartyIDs = 2" in lines
    assert "  448 PartyID = ALICE" in lines  # group members indented
    assert "  452 PartyRole = 1 (EXECUTING_FIRM)" in lines
    assert lines[-1].startswith("10 CheckSum = ")
    assert [v.section for v in describe(nos())][-1] == "trailer"
    assert default_dictionary("FIX.4.4").message_name("8") == "ExecutionReport"
    assert default_dictionary("FIX.4.4").message_name("S") == "QUOTE"
