"""FIX 4.4 tag=value codec and the trading messages tickfan speaks (pure: no I/O, no asyncio, no clock reads
except where a caller leaves a time out).

Why hand-written: FIX tag=value framing is three rules (``8=FIX.4.4|9=<body length>|...|10=<checksum>|``,
SOH-delimited), and we use a dozen messages of FIX 4.4. The well-kept engine, QuickFIX, is a C++ library
whose Python wheels are not reliably available for current CPython (it often compiles from source) and
brings its own sockets and threads; simplefix is pure Python but leaves framing errors and typed messages to
the caller. A small codec keeps the sans-I/O split of the rest of the code (bytes in, values out), stays
byte-exact under test (known vectors, hypothesis round-trips and arbitrary chunking) and never raises on
what the network sends.

Wire rules implemented here:
- A message is ``8=FIX.4.4\\x01 9=N\\x01 <body> 10=CCC\\x01`` where ``<body>`` is every field from 35 up to
  and including the SOH before ``10=``, ``N`` is its length in bytes, and ``CCC`` is the sum of every byte
  before ``10=`` modulo 256, as three digits.
- Text is latin-1 on the wire (ASCII in practice); a value is never empty and never holds SOH.
- Prices are decimal strings converted exactly to integers with 4 implied decimals ("189.2500" <->
  1892500); never floats. Quantities are whole shares.

``FixParser.feed(bytes)`` returns, in stream order, :class:`FixMessage` values and :class:`FixDecodeError`
values for what could not be read (garbage, a BeginString other than FIX.4.4, a wrong BodyLength or
CheckSum, a missing MsgType, a malformed field). It resynchronises on the next ``8=FIX`` and never raises.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal, TypeVar

from vocab.prices import format_price, parse_price

_T = TypeVar("_T")
_E = TypeVar("_E", bound=StrEnum)

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"
_BEGIN_FIELD = b"8=FIX.4.4\x01"
_START = b"8=FIX"
_RESTART = b"8=FIX.4.4\x019="
_BODY_LENGTH_RE = re.compile(rb"9=(\d{1,8})(\x01)?")
_BODY_LENGTH_PREFIX_RE = re.compile(rb"(9(=\d{0,8})?)?")
MAX_MESSAGE_SIZE = 64 * 1024  # bytes, a whole message; a longer one is an error and is skipped
_HEADER_FRAMING_TAGS = frozenset({8, 9, 10})

# Tags used here (FIX 4.4 names)
ACCOUNT = 1
AVG_PX = 6
BEGIN_SEQ_NO = 7
CHECKSUM = 10
CL_ORD_ID = 11
CUM_QTY = 14
EXEC_ID = 17
LAST_PX = 31
LAST_QTY = 32
MSG_SEQ_NUM = 34
MSG_TYPE = 35
ORDER_ID = 37
ORDER_QTY = 38
ORD_STATUS = 39
ORD_TYPE = 40
ORIG_CL_ORD_ID = 41
POSS_DUP_FLAG = 43
PRICE = 44
REF_SEQ_NUM = 45
SENDER_COMP_ID = 49
SENDING_TIME = 52
SIDE = 54
SYMBOL = 55
TARGET_COMP_ID = 56
TEXT = 58
TIME_IN_FORCE = 59
TRANSACT_TIME = 60
POSS_RESEND = 97
ENCRYPT_METHOD = 98
CXL_REJ_REASON = 102
HEART_BT_INT = 108
TEST_REQ_ID = 112
ORIG_SENDING_TIME = 122
RESET_SEQ_NUM_FLAG = 141
EXEC_TYPE = 150
LEAVES_QTY = 151
REF_TAG_ID = 371
REF_MSG_TYPE = 372
SESSION_REJECT_REASON = 373
CXL_REJ_RESPONSE_TO = 434

HEADER_TAGS = frozenset({SENDER_COMP_ID, TARGET_COMP_ID, MSG_SEQ_NUM, SENDING_TIME, POSS_DUP_FLAG, POSS_RESEND,
                         ORIG_SENDING_TIME})


class MsgType(StrEnum):
    HEARTBEAT = "0"
    TEST_REQUEST = "1"
    REJECT = "3"
    LOGOUT = "5"
    EXECUTION_REPORT = "8"
    ORDER_CANCEL_REJECT = "9"
    LOGON = "A"
    NEW_ORDER_SINGLE = "D"
    ORDER_CANCEL_REQUEST = "F"
    ORDER_STATUS_REQUEST = "H"


SESSION_MSG_TYPES = frozenset({MsgType.HEARTBEAT, MsgType.TEST_REQUEST, MsgType.REJECT, MsgType.LOGOUT,
                               MsgType.LOGON, "2", "4"})  # 2 ResendRequest, 4 SequenceReset: not used here


class ExecType(StrEnum):
    NEW = "0"
    CANCELED = "4"
    REJECTED = "8"
    TRADE = "F"
    ORDER_STATUS = "I"


class OrdStatus(StrEnum):
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REJECTED = "8"


class SessionRejectReason(IntEnum):
    INVALID_TAG_NUMBER = 0
    REQUIRED_TAG_MISSING = 1
    TAG_NOT_DEFINED_FOR_MSG_TYPE = 2
    VALUE_OUT_OF_RANGE = 5
    INCORRECT_DATA_FORMAT = 6
    COMP_ID_PROBLEM = 9
    INVALID_MSG_TYPE = 11
    OTHER = 99


class CxlRejReason(IntEnum):
    TOO_LATE_TO_CANCEL = 0
    UNKNOWN_ORDER = 1


Side = Literal["buy", "sell"]
OrdType = Literal["market", "limit"]
Tif = Literal["day", "ioc"]

_SIDE_TO_FIX: dict[str, str] = {"buy": "1", "sell": "2"}
_SIDE_FROM_FIX: dict[str, Side] = {"1": "buy", "2": "sell"}
_ORD_TYPE_TO_FIX: dict[str, str] = {"market": "1", "limit": "2"}
_ORD_TYPE_FROM_FIX: dict[str, OrdType] = {"1": "market", "2": "limit"}
_TIF_TO_FIX: dict[str, str] = {"day": "0", "ioc": "3"}
_TIF_FROM_FIX: dict[str, Tif] = {"0": "day", "3": "ioc"}


# --------------------------------------------------------------------------------------------- errors


class FixEncodeError(ValueError):
    """Our own code asked to encode something FIX cannot carry (a bug, not a network condition)."""


class FixFieldError(ValueError):
    """A well-framed message whose content is wrong: answer with a session Reject (35=3) naming ``tag``."""

    def __init__(self, tag: int | None, reason: SessionRejectReason, text: str) -> None:
        super().__init__(text)
        self.tag, self.reason, self.text = tag, reason, text


class DecodeErrorKind(StrEnum):
    GARBAGE = "garbage"                    # bytes that are not the start of a message
    BEGIN_STRING = "begin_string"          # 8= missing or not FIX.4.4
    BODY_LENGTH = "body_length"            # 9= missing, malformed, or not the body's real length
    CHECKSUM = "checksum"                  # 10= malformed or not the sum of the bytes
    TOO_LONG = "too_long"                  # no end within MAX_MESSAGE_SIZE
    TRUNCATED = "truncated"                # a new message started before this one's CheckSum
    MISSING_MSG_TYPE = "missing_msg_type"  # framed and summed right, but 35 is not the first body field
    BAD_FIELD = "bad_field"                # framed and summed right, but a field is not tag=value

    @property
    def framing(self) -> bool:
        """True when the message boundaries themselves could not be trusted (nothing in it can be used)."""
        return self not in (DecodeErrorKind.MISSING_MSG_TYPE, DecodeErrorKind.BAD_FIELD)


@dataclass(frozen=True, slots=True)
class FixDecodeError:
    """What the parser could not read, as a value in its output stream (never raised)."""

    kind: DecodeErrorKind
    detail: str
    skipped: int  # bytes dropped from the stream for it
    # for a framed message with a bad field: what could still be read, to answer with a Reject
    seq_num: int | None = None
    msg_type: str | None = None


# --------------------------------------------------------------------------------------------- messages


class FixMessage:
    """An ordered list of (tag, value) fields from MsgType (35) up to, not including, CheckSum (10).

    A parsed message carries its header (49, 56, 34, 52, ...) in wire order; a message built by the
    converters below carries 35 and its body, and the session adds the header when sending.
    """

    __slots__ = ("fields", "_index")

    def __init__(self, fields: Iterable[tuple[int, str]]) -> None:
        self.fields: tuple[tuple[int, str], ...] = tuple(fields)
        index: dict[int, str] = {}
        for tag, value in self.fields:
            index.setdefault(tag, value)
        self._index = index

    @classmethod
    def of(cls, msg_type: str, *fields: tuple[int, str | int | None]) -> FixMessage:
        """Build ``35=msg_type`` plus ``fields``; a None value leaves its field out, ints become digits."""
        return cls([(MSG_TYPE, str(msg_type))] + [(t, str(v)) for t, v in fields if v is not None])

    @property
    def msg_type(self) -> str:
        return self.fields[0][1] if self.fields and self.fields[0][0] == MSG_TYPE else ""

    def get(self, tag: int, default: str | None = None) -> str | None:
        """The first value of ``tag``, or ``default``."""
        return self._index.get(tag, default)

    def __getitem__(self, tag: int) -> str:
        return self._index[tag]

    def __contains__(self, tag: object) -> bool:
        return tag in self._index

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FixMessage) and self.fields == other.fields

    def __hash__(self) -> int:
        return hash(self.fields)

    def __repr__(self) -> str:
        return "FixMessage(" + "|".join(f"{t}={v}" for t, v in self.fields) + ")"


def checksum(data: bytes | bytearray | memoryview) -> int:
    """FIX CheckSum: the sum of the bytes modulo 256."""
    return sum(data) & 0xFF


def encode(message: FixMessage) -> bytes:
    """The exact wire bytes of ``message``: BeginString, BodyLength, its fields, CheckSum.

    Raises :class:`FixEncodeError` for what FIX cannot carry (empty values, SOH in a value, tags 8/9/10,
    a first field other than 35, characters beyond latin-1).
    """
    fields = message.fields
    if not fields or fields[0][0] != MSG_TYPE:
        raise FixEncodeError("a FIX message starts with MsgType (35)")
    parts = []
    for tag, value in fields:
        if type(tag) is not int or tag <= 0 or tag in _HEADER_FRAMING_TAGS:
            raise FixEncodeError(f"tag {tag!r} cannot be set by the caller")
        if not value or "\x01" in value:
            raise FixEncodeError(f"tag {tag}: a value must be non-empty and hold no SOH: {value!r}")
        parts.append(f"{tag}={value}\x01")
    try:
        body = "".join(parts).encode("latin-1")
    except UnicodeEncodeError as e:
        raise FixEncodeError(f"not latin-1: {e}") from e
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    return b"%s%s10=%03d\x01" % (head, body, (checksum(head) + checksum(body)) & 0xFF)


def utc_timestamp(epoch_seconds: float) -> str:
    """A FIX UTCTimestamp with milliseconds: ``YYYYMMDD-HH:MM:SS.sss``."""
    ms = int(epoch_seconds * 1000)
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}"


# --------------------------------------------------------------------------------------------- parser


def _possible_start_suffix(buf: bytearray) -> int:
    """How many bytes at the end of ``buf`` could be the beginning of ``8=FIX`` (kept for the next read)."""
    for n in range(min(len(_START) - 1, len(buf)), 0, -1):
        if buf.endswith(_START[:n]):
            return n
    return 0


class FixParser:
    """Incremental parser: feed it bytes as they arrive, get whole messages (and decode errors) out.

    Messages split across reads are held until complete; several in one read all come out, in order. The
    buffer is bounded by ``max_message_size``: a message that has not ended by then is dropped as an error.
    """

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[FixMessage | FixDecodeError]:
        self._buf += data
        out: list[FixMessage | FixDecodeError] = []
        while self._buf:
            item = self._next()
            if item is None:
                break
            out.append(item)
        return out

    def _skip(self, kind: DecodeErrorKind, detail: str, resume_from: int = 1,
              seq_num: int | None = None, msg_type: str | None = None) -> FixDecodeError:
        """Drop bytes up to the next ``8=FIX`` at or after ``resume_from`` (or all that cannot start one)."""
        buf = self._buf
        nxt = buf.find(_START, resume_from)
        if nxt < 0:
            nxt = len(buf) - _possible_start_suffix(buf)
            nxt = max(nxt, min(resume_from, len(buf)))
        del buf[:nxt]
        return FixDecodeError(kind, detail, nxt, seq_num, msg_type)

    def _skip_exact(self, kind: DecodeErrorKind, detail: str, end: int) -> FixDecodeError:
        del self._buf[:end]
        return FixDecodeError(kind, detail, end)

    def _next(self) -> FixMessage | FixDecodeError | None:
        buf = self._buf
        if not buf.startswith(b"8="):
            start = buf.find(_START)
            if start < 0:
                keep = _possible_start_suffix(buf)
                if keep == len(buf):
                    return None
                n = len(buf) - keep
                del buf[:n]
                return FixDecodeError(DecodeErrorKind.GARBAGE, f"{n} bytes that start no message", n)
            del buf[:start]
            return FixDecodeError(DecodeErrorKind.GARBAGE, f"{start} bytes before a BeginString", start)

        n_begin = len(_BEGIN_FIELD)
        if not buf.startswith(_BEGIN_FIELD):
            if len(buf) < n_begin and _BEGIN_FIELD.startswith(buf):
                return None
            soh = buf.find(SOH, 0, 32)
            value = bytes(buf[2:soh if soh >= 0 else 12]).decode("latin-1")
            return self._skip(DecodeErrorKind.BEGIN_STRING, f"BeginString {value!r} is not {BEGIN_STRING}")

        m = _BODY_LENGTH_RE.match(buf, n_begin)
        if m is None or not m.group(2):
            # wait while what we have could still become "9=<digits>SOH"; anything else is an error
            if _BODY_LENGTH_PREFIX_RE.fullmatch(buf, n_begin) is not None:
                return None
            return self._skip(DecodeErrorKind.BODY_LENGTH, "BodyLength (9) missing or malformed")
        digits = m.group(1)
        soh2 = m.end() - 1
        declared = int(digits)
        body_start = soh2 + 1
        if declared + body_start + 7 > self.max_message_size:
            return self._skip(DecodeErrorKind.TOO_LONG, f"BodyLength {declared} exceeds the message size limit")

        # The body ends at the first SOH followed by "10=": tag 10 can only be the CheckSum.
        trailer = buf.find(b"\x0110=", body_start - 1)
        # "8=FIX.4.4<SOH>9=" cannot occur inside a valid body (no value holds SOH): a message cut short
        restart = buf.find(_RESTART, body_start)
        if restart >= 0 and (trailer < 0 or restart < trailer):
            return self._skip(DecodeErrorKind.TRUNCATED, "a message started before this one's CheckSum",
                              resume_from=restart)
        if trailer < 0:
            if len(buf) > self.max_message_size:
                return self._skip(DecodeErrorKind.TOO_LONG, "no CheckSum within the message size limit")
            return None
        end = trailer + 8  # SOH "10=" 3 digits SOH
        if len(buf) < end:
            return None
        cs = bytes(buf[trailer + 4:end - 1])
        if not cs.isdigit() or buf[end - 1] != 1:
            return self._skip(DecodeErrorKind.CHECKSUM, "malformed CheckSum field", resume_from=trailer + 1)
        actual = trailer + 1 - body_start
        if actual != declared:
            return self._skip_exact(DecodeErrorKind.BODY_LENGTH,
                                    f"BodyLength says {declared} bytes, the body has {actual}", end)
        summed = checksum(memoryview(buf)[:trailer + 1])
        if summed != int(cs):
            return self._skip_exact(DecodeErrorKind.CHECKSUM, f"CheckSum says {int(cs):03d}, the bytes sum to "
                                    f"{summed:03d}", end)
        body = bytes(buf[body_start:trailer])  # without the final SOH
        del buf[:end]
        return _parse_body(body, end)


def _parse_body(body: bytes, size: int) -> FixMessage | FixDecodeError:
    fields: list[tuple[int, str]] = []
    problem: str | None = None
    for raw in body.split(SOH):
        tag_b, eq, value_b = raw.partition(b"=")
        if not eq or not tag_b.isdigit() or tag_b.startswith(b"0") or not value_b:
            problem = problem or f"malformed field {raw.decode('latin-1')[:40]!r}"
            continue
        fields.append((int(tag_b), value_b.decode("latin-1")))
    msg = FixMessage(fields)
    seq_text = msg.get(MSG_SEQ_NUM)
    seq = int(seq_text) if seq_text is not None and seq_text.isdigit() else None
    if problem is not None:
        return FixDecodeError(DecodeErrorKind.BAD_FIELD, problem, size, seq, msg.msg_type or None)
    if not msg.msg_type:
        return FixDecodeError(DecodeErrorKind.MISSING_MSG_TYPE, "MsgType (35) is not the first body field",
                              size, seq, msg.get(MSG_TYPE))
    return msg


def decode(data: bytes) -> FixMessage:
    """Exactly one message from ``data`` (tests and tools); raises ValueError for anything else."""
    items = FixParser().feed(data)
    if len(items) != 1 or not isinstance(items[0], FixMessage):
        raise ValueError(f"not exactly one FIX message: {items!r}")
    return items[0]


# --------------------------------------------------------------------------------------------- values


def parse_fix_qty(text: str) -> int:
    """A FIX Qty as whole shares: "100" or "100.00"; a fractional quantity is a ValueError."""
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or (dot and frac.strip("0")) or (frac and not frac.isdigit()):
        raise ValueError(f"not a whole quantity: {text!r}")
    return int(whole)


def _required(msg: FixMessage, tag: int) -> str:
    value = msg.get(tag)
    if value is None:
        raise FixFieldError(tag, SessionRejectReason.REQUIRED_TAG_MISSING, f"required tag {tag} missing")
    return value


def _mapped(msg: FixMessage, tag: int, table: dict[str, _T]) -> _T:
    value = _required(msg, tag)
    try:
        return table[value]
    except KeyError:
        raise FixFieldError(tag, SessionRejectReason.VALUE_OUT_OF_RANGE,
                            f"tag {tag}: unsupported value {value!r}") from None


def _qty(msg: FixMessage, tag: int, *, positive: bool = False, default: int | None = None) -> int:
    value = msg.get(tag)
    if value is None:
        if default is not None:
            return default
        raise FixFieldError(tag, SessionRejectReason.REQUIRED_TAG_MISSING, f"required tag {tag} missing")
    try:
        qty = parse_fix_qty(value)
    except ValueError as e:
        raise FixFieldError(tag, SessionRejectReason.INCORRECT_DATA_FORMAT, f"tag {tag}: {e}") from None
    if positive and qty <= 0:
        raise FixFieldError(tag, SessionRejectReason.VALUE_OUT_OF_RANGE, f"tag {tag}: must be positive")
    return qty


def _price(msg: FixMessage, tag: int, *, default: int | None = None) -> int:
    value = msg.get(tag)
    if value is None:
        if default is not None:
            return default
        raise FixFieldError(tag, SessionRejectReason.REQUIRED_TAG_MISSING, f"required tag {tag} missing")
    try:
        return parse_price(value)
    except ValueError as e:
        raise FixFieldError(tag, SessionRejectReason.INCORRECT_DATA_FORMAT, f"tag {tag}: {e}") from None


def _enum_value(msg: FixMessage, tag: int, enum: type[_E]) -> _E:
    value = _required(msg, tag)
    try:
        return enum(value)
    except ValueError:
        raise FixFieldError(tag, SessionRejectReason.VALUE_OUT_OF_RANGE,
                            f"tag {tag}: unsupported value {value!r}") from None


def _expect_type(msg: FixMessage, msg_type: str) -> None:
    if msg.msg_type != msg_type:
        raise FixFieldError(MSG_TYPE, SessionRejectReason.INVALID_MSG_TYPE,
                            f"expected MsgType {msg_type}, got {msg.msg_type!r}")


def _now_stamp(transact_time: float | None) -> str:
    return utc_timestamp(time.time() if transact_time is None else transact_time)


# --------------------------------------------------------------------------------------------- domain structs

@dataclass(frozen=True, slots=True)
class NewOrder:
    """NewOrderSingle (35=D). ``limit_price`` has 4 implied decimals (1892500 = $189.25); None for market."""

    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType = "market"
    limit_price: int | None = None
    tif: Tif = "day"

    def terms(self) -> tuple[str, str, int, str, int | None, str]:
        """What must match for a repeated ClOrdID to be "the same order"."""
        return (self.symbol, self.side, self.qty, self.ord_type, self.limit_price, self.tif)

    def to_fix(self, transact_time: float | None = None) -> FixMessage:
        if self.qty <= 0:
            raise FixEncodeError(f"order quantity must be positive: {self.qty}")
        if (self.ord_type == "limit") != (self.limit_price is not None):
            raise FixEncodeError("a limit order needs a limit price and a market order takes none")
        return FixMessage.of(
            MsgType.NEW_ORDER_SINGLE,
            (CL_ORD_ID, self.cl_ord_id),
            (SYMBOL, self.symbol),
            (SIDE, _SIDE_TO_FIX[self.side]),
            (ORDER_QTY, self.qty),
            (ORD_TYPE, _ORD_TYPE_TO_FIX[self.ord_type]),
            (PRICE, format_price(self.limit_price) if self.limit_price is not None else None),
            (TIME_IN_FORCE, _TIF_TO_FIX[self.tif]),
            (TRANSACT_TIME, _now_stamp(transact_time)),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> NewOrder:
        """Validate and convert; raises :class:`FixFieldError` naming the offending tag."""
        _expect_type(msg, MsgType.NEW_ORDER_SINGLE)
        ord_type = _mapped(msg, ORD_TYPE, _ORD_TYPE_FROM_FIX)
        limit: int | None = None
        if ord_type == "limit":
            limit = _price(msg, PRICE)
            if limit <= 0:
                raise FixFieldError(PRICE, SessionRejectReason.VALUE_OUT_OF_RANGE, "limit price must be positive")
        tif_text = msg.get(TIME_IN_FORCE, "0") or "0"
        if tif_text not in _TIF_FROM_FIX:
            raise FixFieldError(TIME_IN_FORCE, SessionRejectReason.VALUE_OUT_OF_RANGE,
                                f"tag {TIME_IN_FORCE}: unsupported value {tif_text!r}")
        return cls(
            cl_ord_id=_required(msg, CL_ORD_ID),
            symbol=_required(msg, SYMBOL),
            side=_mapped(msg, SIDE, _SIDE_FROM_FIX),
            qty=_qty(msg, ORDER_QTY, positive=True),
            ord_type=ord_type,
            limit_price=limit,
            tif=_TIF_FROM_FIX[tif_text],
        )


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """OrderCancelRequest (35=F): cancel ``orig_cl_ord_id``; ``cl_ord_id`` names this request."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: int

    def to_fix(self, transact_time: float | None = None) -> FixMessage:
        return FixMessage.of(
            MsgType.ORDER_CANCEL_REQUEST,
            (ORIG_CL_ORD_ID, self.orig_cl_ord_id),
            (CL_ORD_ID, self.cl_ord_id),
            (SYMBOL, self.symbol),
            (SIDE, _SIDE_TO_FIX[self.side]),
            (ORDER_QTY, self.qty),
            (TRANSACT_TIME, _now_stamp(transact_time)),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> CancelRequest:
        _expect_type(msg, MsgType.ORDER_CANCEL_REQUEST)
        return cls(
            cl_ord_id=_required(msg, CL_ORD_ID),
            orig_cl_ord_id=_required(msg, ORIG_CL_ORD_ID),
            symbol=_required(msg, SYMBOL),
            side=_mapped(msg, SIDE, _SIDE_FROM_FIX),
            qty=_qty(msg, ORDER_QTY, default=0),
        )


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """OrderStatusRequest (35=H): ask for an order's executions and state by its ClOrdID."""

    cl_ord_id: str
    symbol: str
    side: Side

    def to_fix(self) -> FixMessage:
        return FixMessage.of(
            MsgType.ORDER_STATUS_REQUEST,
            (CL_ORD_ID, self.cl_ord_id),
            (SYMBOL, self.symbol),
            (SIDE, _SIDE_TO_FIX[self.side]),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> StatusRequest:
        _expect_type(msg, MsgType.ORDER_STATUS_REQUEST)
        return cls(
            cl_ord_id=_required(msg, CL_ORD_ID),
            symbol=_required(msg, SYMBOL),
            side=_mapped(msg, SIDE, _SIDE_FROM_FIX),
        )


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """ExecutionReport (35=8). Prices have 4 implied decimals; ``avg_px`` is rounded to them (the exact
    cost of an order is the sum of ``last_qty * last_px`` over its trades). ``poss_resend`` is header tag 97:
    the report was sent before, under the same ``exec_id`` (apply it at most once)."""

    cl_ord_id: str
    orig_cl_ord_id: str | None
    order_id: str
    exec_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    symbol: str
    side: Side
    last_qty: int
    last_px: int
    leaves_qty: int
    cum_qty: int
    avg_px: int
    text: str = ""
    poss_resend: bool = False

    def to_fix(self) -> FixMessage:
        return FixMessage.of(
            MsgType.EXECUTION_REPORT,
            (POSS_RESEND, "Y" if self.poss_resend else None),
            (ORDER_ID, self.order_id),
            (EXEC_ID, self.exec_id),
            (EXEC_TYPE, ExecType(self.exec_type).value),
            (ORD_STATUS, OrdStatus(self.ord_status).value),
            (CL_ORD_ID, self.cl_ord_id),
            (ORIG_CL_ORD_ID, self.orig_cl_ord_id or None),
            (SYMBOL, self.symbol),
            (SIDE, _SIDE_TO_FIX[self.side]),
            (LAST_QTY, self.last_qty),
            (LAST_PX, format_price(self.last_px)),
            (LEAVES_QTY, self.leaves_qty),
            (CUM_QTY, self.cum_qty),
            (AVG_PX, format_price(self.avg_px)),
            (TEXT, self.text or None),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> ExecutionReport:
        _expect_type(msg, MsgType.EXECUTION_REPORT)
        return cls(
            cl_ord_id=_required(msg, CL_ORD_ID),
            orig_cl_ord_id=msg.get(ORIG_CL_ORD_ID),
            order_id=_required(msg, ORDER_ID),
            exec_id=_required(msg, EXEC_ID),
            exec_type=_enum_value(msg, EXEC_TYPE, ExecType),
            ord_status=_enum_value(msg, ORD_STATUS, OrdStatus),
            symbol=_required(msg, SYMBOL),
            side=_mapped(msg, SIDE, _SIDE_FROM_FIX),
            last_qty=_qty(msg, LAST_QTY, default=0),
            last_px=_price(msg, LAST_PX, default=0),
            leaves_qty=_qty(msg, LEAVES_QTY),
            cum_qty=_qty(msg, CUM_QTY),
            avg_px=_price(msg, AVG_PX, default=0),
            text=msg.get(TEXT, "") or "",
            poss_resend=msg.get(POSS_RESEND) == "Y",
        )


@dataclass(frozen=True, slots=True)
class CancelReject:
    """OrderCancelReject (35=9): the cancel ``cl_ord_id`` of ``orig_cl_ord_id`` was refused."""

    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    ord_status: OrdStatus
    reason: CxlRejReason
    text: str = ""

    def to_fix(self) -> FixMessage:
        return FixMessage.of(
            MsgType.ORDER_CANCEL_REJECT,
            (ORDER_ID, self.order_id),
            (CL_ORD_ID, self.cl_ord_id),
            (ORIG_CL_ORD_ID, self.orig_cl_ord_id),
            (ORD_STATUS, OrdStatus(self.ord_status).value),
            (CXL_REJ_RESPONSE_TO, "1"),  # to an OrderCancelRequest
            (CXL_REJ_REASON, int(self.reason)),
            (TEXT, self.text or None),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> CancelReject:
        _expect_type(msg, MsgType.ORDER_CANCEL_REJECT)
        reason_text = msg.get(CXL_REJ_REASON, "1") or "1"
        try:
            reason = CxlRejReason(int(reason_text))
        except ValueError:
            raise FixFieldError(CXL_REJ_REASON, SessionRejectReason.VALUE_OUT_OF_RANGE,
                                f"tag {CXL_REJ_REASON}: unsupported value {reason_text!r}") from None
        return cls(
            cl_ord_id=_required(msg, CL_ORD_ID),
            orig_cl_ord_id=_required(msg, ORIG_CL_ORD_ID),
            order_id=_required(msg, ORDER_ID),
            ord_status=_enum_value(msg, ORD_STATUS, OrdStatus),
            reason=reason,
            text=msg.get(TEXT, "") or "",
        )


@dataclass(frozen=True, slots=True)
class SessionReject:
    """Reject (35=3): message ``ref_seq_num`` was refused at the session level."""

    ref_seq_num: int
    reason: SessionRejectReason | None = None
    text: str = ""
    ref_tag: int | None = None
    ref_msg_type: str | None = None

    def to_fix(self) -> FixMessage:
        return FixMessage.of(
            MsgType.REJECT,
            (REF_SEQ_NUM, self.ref_seq_num),
            (REF_TAG_ID, self.ref_tag),
            (REF_MSG_TYPE, self.ref_msg_type or None),
            (SESSION_REJECT_REASON, int(self.reason) if self.reason is not None else None),
            (TEXT, self.text or None),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> SessionReject:
        _expect_type(msg, MsgType.REJECT)
        ref_tag = msg.get(REF_TAG_ID)
        reason = msg.get(SESSION_REJECT_REASON)
        reason_value: SessionRejectReason | None = None
        if reason is not None and reason.isdigit():
            try:
                reason_value = SessionRejectReason(int(reason))
            except ValueError:
                reason_value = SessionRejectReason.OTHER
        return cls(
            ref_seq_num=_qty(msg, REF_SEQ_NUM),
            reason=reason_value,
            text=msg.get(TEXT, "") or "",
            ref_tag=int(ref_tag) if ref_tag is not None and ref_tag.isdigit() else None,
            ref_msg_type=msg.get(REF_MSG_TYPE),
        )


# --------------------------------------------------------------------------------------------- session messages


def logon(heartbeat_interval: int, *, reset_seq_num: bool = True) -> FixMessage:
    """Logon (35=A): no encryption (98=0), HeartBtInt (108), ResetSeqNumFlag (141=Y)."""
    return FixMessage.of(MsgType.LOGON, (ENCRYPT_METHOD, 0), (HEART_BT_INT, heartbeat_interval),
                         (RESET_SEQ_NUM_FLAG, "Y" if reset_seq_num else None))


def heartbeat(test_req_id: str | None = None) -> FixMessage:
    return FixMessage.of(MsgType.HEARTBEAT, (TEST_REQ_ID, test_req_id or None))


def test_request(test_req_id: str) -> FixMessage:
    return FixMessage.of(MsgType.TEST_REQUEST, (TEST_REQ_ID, test_req_id))


test_request.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def logout(text: str | None = None) -> FixMessage:
    return FixMessage.of(MsgType.LOGOUT, (TEXT, text or None))


__all__ = [
    "BEGIN_STRING", "CancelReject", "CancelRequest", "CxlRejReason", "DecodeErrorKind", "ExecType",
    "ExecutionReport", "FixDecodeError", "FixEncodeError", "FixFieldError", "FixMessage", "FixParser", "MsgType",
    "NewOrder", "OrdStatus", "SessionReject", "SessionRejectReason", "StatusRequest", "checksum", "decode",
    "encode", "heartbeat", "logon", "logout", "parse_fix_qty",
    "test_request", "utc_timestamp",
]
