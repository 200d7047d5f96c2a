"""FIX data dictionaries in the QuickFIX XML format, a validator, and a decoder for humans.

* :class:`DataDictionary` loads any QuickFIX-style XML dictionary (``<fix major= minor=>`` with
  ``<header>``, ``<messages>``, ``<trailer>``, ``<components>`` and ``<fields>``; components nest, groups
  nest, a group's delimiter is its first field). The desk ships its own dictionaries in ``spec/``:
  ``OPDESK-FIX44.xml`` and ``OPDESK-FIX42.xml`` (:func:`default_dictionary`).
* :class:`Validator` checks an inbound message against a dictionary and returns the
  :class:`~engines.fix.errors.RejectInfo` the session answers with (35=3), or None. The checks and their
  order follow QuickFIX's ``DataDictionary::validate``: message type, required fields, then every field in
  wire order (tag number, value present, header/body/trailer order, tag allowed for the message type,
  repeated tag, data format, enumerated value, repeating-group count).
* :meth:`DataDictionary.describe` decodes a message with field and enum names for the console's message
  inspector (secrets masked).

The validator works on the message as its ordered ``(tag, value)`` pairs, so it is independent of the
parser's message class; :func:`pairs_of` adapts the session's parsed messages.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from engines.fix.errors import RejectInfo, SessionRejectReason
from engines.fix.message import SECRET_TAGS as WIRE_SECRET_TAGS
from engines.fix.message import FixMessage

SPEC_DIR = Path(__file__).resolve().parent / "spec"
DEFAULT_FILES = {"FIX.4.4": SPEC_DIR / "OPDESK-FIX44.xml", "FIX.4.2": SPEC_DIR / "OPDESK-FIX42.xml"}

#: Tags whose values the inspector never shows: the wire format's secrets plus RawData and SecureData.
SECRET_TAGS = frozenset(WIRE_SECRET_TAGS) | {91, 96}

#: Standard texts of SessionRejectReason (373), as QuickFIX words them.
REASON_TEXT: dict[int, str] = {
    0: "Invalid tag number",
    1: "Required tag missing",
    2: "Tag not defined for this message type",
    3: "Undefined Tag",
    4: "Tag specified without a value",
    5: "Value is incorrect (out of range) for this tag",
    6: "Incorrect data format for value",
    7: "Decryption problem",
    8: "Signature problem",
    9: "CompID problem",
    10: "SendingTime accuracy problem",
    11: "Invalid MsgType",
    12: "XML Validation error",
    13: "Tag appears more than once",
    14: "Tag specified out of required order",
    15: "Repeating group fields out of order",
    16: "Incorrect NumInGroup count for repeating group",
    17: "Non Data value includes field delimiter (SOH character)",
    99: "Other",
}

Pairs = Sequence[tuple[int, Any]]


class DictionaryError(ValueError):
    """A dictionary file that is not a usable QuickFIX-format dictionary."""


# --- value formats -------------------------------------------------------------------------------------

# Checks work on the raw bytes (no decoding on the hot path).
_FLOAT = re.compile(rb"-?(?:\d+\.?\d*|\.\d+)\Z")
_TS_REST = re.compile(rb"(\d{2})(?:\.\d{3}(?:\d{3}(?:\d{3})?)?)?\Z")
_TIME = re.compile(rb"(\d{2}):(\d{2}):(\d{2})(?:\.\d{3}(?:\d{3}(?:\d{3})?)?)?\Z")
_DATE = re.compile(rb"(\d{4})(\d{2})(\d{2})\Z")
_MONTHYEAR = re.compile(rb"\d{4}(?:0[1-9]|1[0-2])(?:\d{2}|w[1-5])?\Z")
_good_minutes: set[bytes] = set()  # "YYYYMMDD-HH:MM:" prefixes already found valid


def _is_int(v: bytes) -> bool:
    return v.isdigit() or (v[:1] == b"-" and v[1:].isdigit())


def _is_date(v: bytes) -> bool:
    m = _DATE.match(v)
    return m is not None and 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31


def _is_timestamp(v: bytes) -> bool:
    prefix = v[:15]
    if prefix not in _good_minutes:
        if len(prefix) != 15 or prefix[8:9] != b"-" or prefix[11:12] != b":" or prefix[14:15] != b":":
            return False
        h, mi = prefix[9:11], prefix[12:14]
        if not (_is_date(prefix[:8]) and h.isdigit() and mi.isdigit() and int(h) <= 23 and int(mi) <= 59):
            return False
        if len(_good_minutes) > 10_000:
            _good_minutes.clear()
        _good_minutes.add(prefix)
    if len(v) == 21 and v[17] == 46:  # "SS.sss", the usual shape: what the regex below accepts, without it
        sec = v[15:17]
        return sec.isdigit() and sec <= b"60" and v[18:].isdigit()  # two ASCII digits compare as text
    m = _TS_REST.match(v, 15)
    return m is not None and int(m.group(1)) <= 60  # 60: leap second


def _is_time(v: bytes) -> bool:
    m = _TIME.match(v)
    return m is not None and int(m.group(1)) <= 23 and int(m.group(2)) <= 59 and int(m.group(3)) <= 60


def _is_float(v: bytes) -> bool:
    return _FLOAT.match(v) is not None


_FORMATS: dict[str, Callable[[bytes], bool]] = {
    "INT": _is_int,
    "DAYOFMONTH": lambda v: v.isdigit() and 1 <= int(v) <= 31,
    "LENGTH": bytes.isdigit,
    "SEQNUM": bytes.isdigit,
    "NUMINGROUP": bytes.isdigit,
    "TAGNUM": lambda v: v.isdigit() and not v.startswith(b"0"),
    "FLOAT": _is_float,
    "PRICE": _is_float,
    "QTY": _is_float,
    "AMT": _is_float,
    "PRICEOFFSET": _is_float,
    "PERCENTAGE": _is_float,
    "CHAR": lambda v: len(v) == 1,
    "BOOLEAN": lambda v: v == b"Y" or v == b"N",
    "UTCTIMESTAMP": _is_timestamp,
    "TIME": _is_timestamp,
    "UTCTIMEONLY": _is_time,
    "UTCDATEONLY": _is_date,
    "UTCDATE": _is_date,
    "LOCALMKTDATE": _is_date,
    "DATE": _is_date,
    "MONTHYEAR": lambda v: _MONTHYEAR.match(v) is not None,
}
#: Types whose value is a space-separated list of enum values.
_MULTI = frozenset({"MULTIPLEVALUESTRING", "MULTIPLECHARVALUE", "MULTIPLESTRINGVALUE"})
#: Types whose values rarely repeat (not worth remembering as valid).
_TIME_TYPES = frozenset({"UTCTIMESTAMP", "TIME", "UTCTIMEONLY", "SEQNUM", "LENGTH"})
#: Header and trailer fields the session layer has already verified before any validator runs.
_SESSION_CHECKED = frozenset({8, 9, 10, 34, 35, 49, 52, 56})


# --- the model -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FieldDef:
    tag: int
    name: str
    type: str
    enums: dict[str, str] = field(default_factory=dict)  # value -> description
    check: Callable[[bytes], bool] | None = None
    enum_bytes: frozenset[bytes] = frozenset()
    cacheable: bool = False  # values repeat (enums, prices, quantities): remember the valid ones

    def __post_init__(self) -> None:
        self.enum_bytes = frozenset(v.encode("latin-1") for v in self.enums)
        self.cacheable = bool(self.enum_bytes) or (self.check is not None and self.type not in _TIME_TYPES)

    def valid_value(self, value: bytes) -> bool:
        if not self.enums:
            return True
        if self.type in _MULTI:
            return all(part in self.enum_bytes for part in value.split(b" ") if part)
        return value in self.enum_bytes


@dataclass(slots=True)
class Layout:
    """The fields of a header, trailer, message body or group entry (components flattened in)."""

    order: list[int] = field(default_factory=list)  # declared order (group count tags included)
    required: list[int] = field(default_factory=list)
    groups: dict[int, GroupDef] = field(default_factory=dict)
    tags: frozenset[int] = frozenset()

    def freeze(self) -> None:
        self.tags = frozenset(self.order)


@dataclass(slots=True)
class GroupDef(Layout):
    count_tag: int = 0
    delimiter: int = 0


@dataclass(slots=True)
class MessageDef(Layout):
    name: str = ""
    msg_type: str = ""
    category: str = "app"


@dataclass(frozen=True, slots=True)
class FieldView:
    """One field of a decoded message, for display."""

    tag: int
    name: str  # "" if the dictionary does not know the tag
    value: str  # secrets masked as "***"
    meaning: str  # the enum description, "" if none
    depth: int  # repeating-group nesting level, 0 at the top
    section: str  # "header", "body" or "trailer"

    def __str__(self) -> str:
        label = f"{self.tag} {self.name}" if self.name else str(self.tag)
        meaning = f" ({self.meaning})" if self.meaning else ""
        return f"{'  ' * self.depth}{label} = {self.value}{meaning}"


class DataDictionary:
    """One FIX version's fields, messages, header and trailer."""

    def __init__(self, begin_string: str, source: str = "") -> None:
        self.begin_string = begin_string
        self.source = source
        self.fields: dict[int, FieldDef] = {}
        self.by_name: dict[str, int] = {}
        self.header = Layout()
        self.trailer = Layout()
        self.messages: dict[str, MessageDef] = {}
        self.messages_by_name: dict[str, MessageDef] = {}
        #: (tag, value) pairs found valid before; a value's validity depends only on the dictionary.
        self.valid_values: set[tuple[int, bytes]] = set()

    # --- loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> DataDictionary:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DictionaryError(f"cannot read FIX dictionary {path}: {exc.strerror}") from None
        return cls.from_xml(text, source=str(path))

    @classmethod
    def from_xml(cls, text: str, *, source: str = "<string>") -> DataDictionary:
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise DictionaryError(f"{source}: not valid XML: {exc}") from None
        if root.tag != "fix":
            raise DictionaryError(f"{source}: root element is <{root.tag}>, expected <fix>")
        kind = root.get("type", "FIX")
        major, minor = root.get("major"), root.get("minor")
        if major is None or minor is None:
            raise DictionaryError(f"{source}: <fix> needs major= and minor= attributes")
        sp = root.get("servicepack", "0")
        begin = f"{kind}.{major}.{minor}" + (f"SP{sp}" if sp not in ("", "0") else "")
        dd = cls(begin, source)
        dd._load_fields(root.find("fields"), source)
        components = {c.get("name", ""): c for c in root.findall("components/component")}
        dd._fill(dd.header, root.find("header"), components, required=True, source=source)
        dd._fill(dd.trailer, root.find("trailer"), components, required=True, source=source)
        for m in root.findall("messages/message"):
            name, msg_type = m.get("name", ""), m.get("msgtype")
            if not msg_type:
                raise DictionaryError(f"{source}: message {name!r} has no msgtype")
            mdef = MessageDef(name=name, msg_type=msg_type, category=m.get("msgcat", "app"))
            dd._fill(mdef, m, components, required=True, source=source)
            dd.messages[msg_type] = mdef
            dd.messages_by_name[name] = mdef
        return dd

    def _load_fields(self, node: ET.Element | None, source: str) -> None:
        if node is None:
            raise DictionaryError(f"{source}: no <fields> section")
        for f in node.findall("field"):
            try:
                tag = int(f.get("number", ""))
            except ValueError:
                raise DictionaryError(f"{source}: field {f.get('name')!r} has a bad number") from None
            name = f.get("name", "")
            typ = (f.get("type") or "STRING").upper()
            enums = {v.get("enum", ""): v.get("description", "") for v in f.findall("value")}
            # Header fields the session layer verified are not checked again (but are still looked up).
            check = None if tag in _SESSION_CHECKED else _FORMATS.get(typ)
            self.fields[tag] = FieldDef(tag, name, typ, enums, check)
            self.by_name[name] = tag

    def _fill(
        self,
        layout: Layout,
        node: ET.Element | None,
        components: dict[str, ET.Element],
        *,
        required: bool,
        source: str,
        seen: tuple[str, ...] = (),
    ) -> None:
        if node is None:
            return
        for item in node:
            name = item.get("name", "")
            req = required and item.get("required", "N").upper() == "Y"
            if item.tag == "field":
                tag = self._tag(name, source)
                layout.order.append(tag)
                if req:
                    layout.required.append(tag)
            elif item.tag == "group":
                tag = self._tag(name, source)
                group = GroupDef(count_tag=tag)
                # Inside a group entry, "required" is relative to the entry, whatever the group's own flag.
                self._fill(group, item, components, required=True, source=source, seen=seen)
                if not group.order:
                    raise DictionaryError(f"{source}: group {name!r} is empty")
                group.delimiter = group.order[0]
                group.freeze()
                layout.order.append(tag)
                layout.groups[tag] = group
                if req:
                    layout.required.append(tag)
            elif item.tag == "component":
                comp = components.get(name)
                if comp is None:
                    raise DictionaryError(f"{source}: unknown component {name!r}")
                if name in seen:
                    raise DictionaryError(f"{source}: component {name!r} includes itself")
                # A component that is not required contributes no required fields (QuickFIX does the same).
                self._fill(layout, comp, components, required=req, source=source, seen=(*seen, name))
        layout.freeze()

    def _tag(self, name: str, source: str) -> int:
        try:
            return self.by_name[name]
        except KeyError:
            raise DictionaryError(f"{source}: {name!r} is used but not defined in <fields>") from None

    # --- names -------------------------------------------------------------------------------------
    def field_name(self, tag: int) -> str:
        f = self.fields.get(tag)
        return f.name if f is not None else str(tag)

    def tag_of(self, name: str) -> int:
        return self.by_name[name]

    def enum_name(self, tag: int, value: str) -> str:
        f = self.fields.get(tag)
        return f.enums.get(value, "") if f is not None else ""

    def message_name(self, msg_type: str) -> str:
        m = self.messages.get(msg_type)
        if m is not None:
            return m.name
        return self.enum_name(35, msg_type) or msg_type

    def is_admin(self, msg_type: str) -> bool:
        m = self.messages.get(msg_type)
        return m is not None and m.category == "admin"

    # --- decoding for people -------------------------------------------------------------------------
    def describe(self, msg: Any) -> list[FieldView]:
        """Every field of ``msg`` (pairs, a parsed message or raw bytes) with names, enum meanings, depth."""
        pairs = pairs_of(msg)
        mdef = self.messages.get(_value_of(pairs, 35))
        out: list[FieldView] = []
        # stack of (group, depth) for the groups we are inside
        stack: list[tuple[GroupDef, int]] = []
        section = "header"
        for tag, raw in pairs:
            value = _text(raw)
            while stack and tag not in stack[-1][0].tags:
                stack.pop()
            if stack:
                depth = stack[-1][1]
                scope: Layout = stack[-1][0]
            else:
                depth = 0
                if tag in self.header.tags and section == "header":
                    scope = self.header
                elif tag in self.trailer.tags:
                    section, scope = "trailer", self.trailer
                else:
                    section = "body"
                    scope = mdef if mdef is not None else Layout()
            f = self.fields.get(tag)
            shown = "***" if tag in SECRET_TAGS else value
            meaning = ""
            if f is not None and f.enums and tag not in SECRET_TAGS:
                if f.type in _MULTI:
                    meaning = " ".join(f.enums.get(p, "?") for p in value.split(" ") if p)
                else:
                    meaning = f.enums.get(value, "")
            out.append(FieldView(tag, f.name if f else "", shown, meaning, depth, section))
            group = scope.groups.get(tag)
            if group is not None:
                stack.append((group, depth + 1))
        return out

    def format(self, msg: Any) -> str:
        """The decoded message as text, one field a line, groups indented."""
        return "\n".join(str(v) for v in self.describe(msg))

    # --- validation ----------------------------------------------------------------------------------
    def validator(self, **options: Any) -> Validator:
        return Validator(self, **options)


@dataclass(slots=True)
class _Problem(Exception):  # internal control flow, never escapes
    reason: int
    tag: int | None
    detail: str = ""


class Validator:
    """Validates inbound messages against a :class:`DataDictionary` (the session's ``validator`` hook).

    Options (QuickFIX's names in brackets):
      * ``check_fields_out_of_order`` [ValidateFieldsOutOfOrder]: header fields after the body and body
        fields after the trailer are rejected (373=14);
      * ``allow_unknown_fields`` [AllowUnknownMsgFields]: tags the dictionary does not define pass;
      * ``allow_user_defined_fields`` [!ValidateUserDefinedFields]: undefined tags >= 5000 pass;
      * ``validate_admin``: also validate admin messages (the session checks these itself otherwise).

    Messages of a type the FIX standard defines but this dictionary does not (e.g. a Quote, 35=S) pass,
    so the application answers them with a BusinessMessageReject (380=3, unsupported message type), as
    the standard asks; a MsgType the standard does not know gets a Reject 373=11.
    """

    def __init__(
        self,
        dictionary: DataDictionary,
        *,
        check_fields_out_of_order: bool = True,
        allow_unknown_fields: bool = False,
        allow_user_defined_fields: bool = False,
        validate_admin: bool = True,
    ) -> None:
        self.dictionary = dictionary
        self.check_fields_out_of_order = check_fields_out_of_order
        self.allow_unknown_fields = allow_unknown_fields
        self.allow_user_defined_fields = allow_user_defined_fields
        self.validate_admin = validate_admin
        self._plans: dict[str, dict[int, tuple[int, FieldDef, GroupDef | None]]] = {}
        # Tag sequences found valid, per MsgType -> the positions whose values still need a check there.
        self._shapes: dict[str, dict[tuple[int, ...], tuple[tuple[int, FieldDef, set[bytes]], ...]]] = {}
        self._good: dict[int, set[bytes]] = {}  # tag -> values found valid (the shape fast path's memory)
        self.known_msg_types = (
            frozenset(dictionary.fields[35].enums) if 35 in dictionary.fields else frozenset()
        )

    def __call__(self, msg: Any) -> RejectInfo | None:
        return self.validate(msg)

    def validate(self, msg: Any) -> RejectInfo | None:
        """None if ``msg`` is valid, else what to reject it with (373, 371 and 58)."""
        pairs = msg.pairs() if type(msg) is FixMessage else _byte_pairs(pairs_of(msg))
        dd = self.dictionary
        msg_type = getattr(msg, "msg_type", None)
        if not isinstance(msg_type, str):
            msg_type = _value_of(pairs, 35)
        mdef = dd.messages.get(msg_type)
        if mdef is None:
            if msg_type in self.known_msg_types:
                return None  # standard but unsupported here: the application's BusinessMessageReject
            return _reject(SessionRejectReason.INVALID_MSGTYPE, 35, msg_type)
        if mdef.category == "admin" and not self.validate_admin:
            return None
        # Structure (which tags, in which order: required fields, allowed tags, header/body/trailer order,
        # repeats) depends only on the tag sequence; a sequence found valid before needs only its values
        # checked: every one present, and those with a format or an enum (the shape's plan) valid — the
        # session-checked header fields (8, 9, 10, 34, 49, 52, 56) and free strings (a ClOrdID) have
        # nothing more to check. Anything wrong: the full check below finds the same first problem.
        shape = tuple([t for t, v in pairs if v])  # a field without a value leaves it short: no match
        shapes = self._shapes.get(msg_type)
        try:
            if shapes is not None and len(shape) == len(pairs):
                plan = shapes.get(shape)
                if plan is not None:
                    for i, f, good in plan:
                        raw = pairs[i][1]
                        if raw in good:
                            continue
                        if (f.check is not None and not f.check(raw)) or (f.enum_bytes and not f.valid_value(raw)):
                            break
                        if f.cacheable:
                            if len(good) > 10_000:
                                good.clear()
                            good.add(raw)
                    else:
                        return None
            self._check_required(pairs, mdef)
            if not self._iterate(pairs, mdef):  # no repeating group: the shape alone says it all
                if shapes is None:
                    shapes = self._shapes[msg_type] = {}
                if len(shapes) < 1_000:
                    shape = tuple([t for t, _ in pairs])
                    shapes[shape] = self._shape_plan(shape)
        except _Problem as p:
            return _reject(p.reason, p.tag, p.detail)
        return None

    def _shape_plan(self, shape: tuple[int, ...]) -> tuple[tuple[int, FieldDef, set[bytes]], ...]:
        """The positions of a valid shape whose values have a format or an enum to check."""
        fields = self.dictionary.fields
        plan = []
        for i, tag in enumerate(shape):
            f = fields.get(tag)
            if f is not None and (f.check is not None or f.enum_bytes):
                plan.append((i, f, self._good.setdefault(tag, set())))
        return tuple(plan)

    def _check_required(self, pairs: Pairs, mdef: MessageDef) -> None:
        present = {t for t, _ in pairs}
        for layout in (self.dictionary.header, mdef, self.dictionary.trailer):
            for tag in layout.required:
                if tag not in present:
                    raise _Problem(SessionRejectReason.REQUIRED_TAG_MISSING, tag, self._label(tag))

    def _label(self, tag: int) -> str:
        f = self.dictionary.fields.get(tag)
        return f"{tag} ({f.name})" if f is not None else str(tag)

    def _field(self, tag: int, raw: bytes) -> None:
        """Checks every field shares: known tag, a value, its format and its enum."""
        f = self.dictionary.fields.get(tag)
        if f is None and not (self.allow_unknown_fields or (self.allow_user_defined_fields and tag >= 5000)):
            raise _Problem(SessionRejectReason.INVALID_TAG_NUMBER, tag, str(tag))
        if not raw:
            raise _Problem(SessionRejectReason.TAG_SPECIFIED_WITHOUT_A_VALUE, tag, self._label(tag))
        if f is None:
            return
        if f.check is not None and not f.check(raw):
            raise _Problem(SessionRejectReason.INCORRECT_DATA_FORMAT_FOR_VALUE, tag, f"{tag}={_text(raw)}")
        if f.enum_bytes and not f.valid_value(raw):
            raise _Problem(SessionRejectReason.VALUE_IS_INCORRECT, tag, f"{tag}={_text(raw)}")

    def _plan(self, mdef: MessageDef) -> dict[int, tuple[int, FieldDef, GroupDef | None]]:
        """tag -> (section 0 header / 1 body / 2 trailer, its definition, its group) for one message type."""
        plan = self._plans.get(mdef.msg_type)
        if plan is None:
            fields = self.dictionary.fields
            plan = {}
            for section, layout in ((2, self.dictionary.trailer), (1, mdef), (0, self.dictionary.header)):
                for tag in layout.order:
                    plan[tag] = (section, fields[tag], layout.groups.get(tag))
            self._plans[mdef.msg_type] = plan
        return plan

    def _iterate(self, pairs: Pairs, mdef: MessageDef) -> bool:
        """Check every field in order; True if the message had a repeating group."""
        plan = self._plan(mdef)
        grouped = False
        fields = self.dictionary.fields
        strict_order = self.check_fields_out_of_order
        valid = self.dictionary.valid_values
        seen: set[int] = set()
        section = 0  # 0 header, 1 body, 2 trailer
        n = len(pairs)
        i = 0
        while i < n:
            tag, raw = pairs[i]
            entry = plan.get(tag)
            group: GroupDef | None = None
            if entry is None:
                # An undefined tag, or one this message type does not have: work out which reject.
                self._field(tag, raw)
                if tag in fields:
                    raise _Problem(
                        SessionRejectReason.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE,
                        tag,
                        f"{self._label(tag)} in {mdef.name}",
                    )
                sec = 1  # an unknown tag the options allow: a body field
            else:
                sec, f, group = entry
                # Values seen valid before (sides, order types, prices, quantities) skip the checks.
                if (tag, raw) not in valid:
                    if (
                        not raw
                        or (f.check is not None and not f.check(raw))
                        or (f.enum_bytes and not f.valid_value(raw))
                    ):
                        self._field(tag, raw)
                    if f.cacheable:
                        if len(valid) > 100_000:
                            valid.clear()
                        valid.add((tag, raw))
            if sec == 1:
                if section == 2 and strict_order:
                    raise _Problem(
                        SessionRejectReason.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, tag, self._label(tag)
                    )
                section = 1
            elif sec == 0:
                if section != 0 and strict_order:
                    raise _Problem(
                        SessionRejectReason.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, tag, self._label(tag)
                    )
            else:
                section = 2
            if tag in seen:
                raise _Problem(SessionRejectReason.TAG_APPEARS_MORE_THAN_ONCE, tag, self._label(tag))
            seen.add(tag)
            i += 1
            if group is not None:
                grouped = True
                i = self._group(pairs, i, group, _count(tag, raw))
        return grouped

    def _group(self, pairs: Pairs, i: int, group: GroupDef, count: int) -> int:
        """Parse the entries of ``group`` starting at ``pairs[i]``; returns the index after them."""
        n = len(pairs)
        entries = 0
        delimiter = group.delimiter
        while i < n and pairs[i][0] == delimiter:
            entries += 1
            in_entry: set[int] = set()
            while i < n:
                tag, raw = pairs[i]
                if tag not in group.tags or (tag == delimiter and in_entry):
                    break
                if tag in in_entry:
                    raise _Problem(SessionRejectReason.TAG_APPEARS_MORE_THAN_ONCE, tag, self._label(tag))
                in_entry.add(tag)
                self._field(tag, raw)
                i += 1
                nested = group.groups.get(tag)
                if nested is not None:
                    i = self._group(pairs, i, nested, _count(tag, raw))
            for tag in group.required:
                if tag not in in_entry:
                    raise _Problem(SessionRejectReason.REQUIRED_TAG_MISSING, tag, self._label(tag))
        if i < n and pairs[i][0] in group.tags and entries < count:
            # An entry that does not start with the delimiter: fields out of order within the group.
            tag = pairs[i][0]
            raise _Problem(SessionRejectReason.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, tag, self._label(tag))
        if entries != count:
            raise _Problem(
                SessionRejectReason.INCORRECT_NUMINGROUP_COUNT_FOR_REPEATING_GROUP,
                group.count_tag,
                f"{self._label(group.count_tag)}={count}, {entries} entries",
            )
        return i


def _count(tag: int, raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _Problem(
            SessionRejectReason.INCORRECT_DATA_FORMAT_FOR_VALUE, tag, f"{tag}={_text(raw)}"
        ) from None


def _reject(reason: int, tag: int | None, detail: str) -> RejectInfo:
    text = REASON_TEXT.get(reason, "Other")
    return RejectInfo(reason=reason, ref_tag=tag, text=f"{text}: {detail}" if detail else text)


# --- helpers ---------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


def _byte_pairs(pairs: Pairs) -> Pairs:
    """Values as bytes (a parsed message's already are)."""
    if pairs and not isinstance(pairs[0][1], bytes):
        return [(t, v if isinstance(v, bytes) else str(v).encode("latin-1")) for t, v in pairs]
    return pairs


def _value_of(pairs: Pairs, tag: int) -> str:
    for t, v in pairs:
        if t == tag:
            return _text(v)
    return ""


def split_raw(raw: bytes | str, sep: bytes = b"\x01") -> list[tuple[int, bytes]]:
    """A raw message as (tag, value) pairs. Only for display and tests: no length-prefixed data fields."""
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if sep != b"\x01" or b"\x01" not in raw:
        raw = raw.replace(b"|", b"\x01") if b"\x01" not in raw else raw
    out = []
    for part in raw.split(b"\x01"):
        if not part:
            continue
        tag, _, value = part.partition(b"=")
        try:
            out.append((int(tag), value))
        except ValueError:
            out.append((-1, part))
    return out


def pairs_of(msg: Any) -> Pairs:
    """The ordered (tag, value) pairs of a parsed message, a raw message, or pairs already."""
    if isinstance(msg, bytes | str):
        return split_raw(msg)
    for attr in ("pairs", "fields"):
        got = getattr(msg, attr, None)
        if got is not None:
            return got() if callable(got) else got
    if isinstance(msg, Sequence):
        return msg
    if isinstance(msg, Iterable):
        return list(msg)
    raise TypeError(f"cannot read FIX fields from {type(msg).__name__}")


@lru_cache(maxsize=16)
def _load_cached(path: str) -> DataDictionary:
    return DataDictionary.load(path)


def load_dictionary(path: str | Path) -> DataDictionary:
    """Load (once per process) a QuickFIX-format dictionary file."""
    return _load_cached(str(Path(path).expanduser().resolve()))


def default_dictionary(begin_string: str) -> DataDictionary:
    """The desk's own dictionary for FIX.4.2 or FIX.4.4."""
    try:
        return load_dictionary(DEFAULT_FILES[begin_string])
    except KeyError:
        raise DictionaryError(
            f"no built-in dictionary for {begin_string} (have {', '.join(DEFAULT_FILES)})"
        ) from None


def field_name(tag: int, begin_string: str = "FIX.4.4") -> str:
    """The name of ``tag`` in the desk's dictionary for ``begin_string`` (the tag number if unknown)."""
    return default_dictionary(begin_string).field_name(tag)


def describe(msg: Any, begin_string: str | None = None) -> list[FieldView]:
    """Decode ``msg`` with the desk's dictionary for its BeginString (or ``begin_string``)."""
    pairs = pairs_of(msg)
    version = begin_string or _value_of(pairs, 8) or "FIX.4.4"
    dd = default_dictionary(version if version in DEFAULT_FILES else "FIX.4.4")
    return dd.describe(pairs)
