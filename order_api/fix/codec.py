"""FIX 4.4 tag=value codec (pure: bytes in, values out; no I/O, no asyncio, no clock).

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

``FixParser.feed(bytes)`` returns, in stream order, :class:`FixMessage` values and :class:`FixDecodeError`
values for what could not be read (garbage, a BeginString other than FIX.4.4, a wrong BodyLength or
CheckSum, a missing MsgType, a malformed field). It resynchronises on the next ``8=FIX`` and never raises.
The typed messages built on it are in ``messages``; the tag numbers used anywhere are named here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from vocab.digits import is_ascii_digits, parse_ascii_int

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"
_BEGIN_FIELD = b"8=FIX.4.4\x01"
_START = b"8=FIX"
_RESTART = b"8=FIX.4.4\x019="
_BODY_LENGTH_RE = re.compile(rb"9=(\d{1,8})(\x01)?")
_BODY_LENGTH_PREFIX_RE = re.compile(rb"(9(=\d{0,8})?)?")
MAX_MESSAGE_SIZE = 64 * 1024  # bytes, a whole message; a longer one is an error and is skipped
MAX_TAG_DIGITS = 9  # FIX tags (user-defined ones included) are far shorter; a longer "tag" is a malformed field
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
TRADING_SESSION_ID = 336
NO_TRADING_SESSIONS = 386
REF_TAG_ID = 371
REF_MSG_TYPE = 372
SESSION_REJECT_REASON = 373
CXL_REJ_RESPONSE_TO = 434
# Our dialect's one user-defined tag (FIX leaves 5000-9999 to bilateral use): on Logon, the sender's order-memory
# incarnation, which changes whenever it restarts without the orders it had (order_api/FIX.md).
INCARNATION = 9100

HEADER_TAGS = frozenset({SENDER_COMP_ID, TARGET_COMP_ID, MSG_SEQ_NUM, SENDING_TIME, POSS_DUP_FLAG, POSS_RESEND,
                         ORIG_SENDING_TIME})


# --------------------------------------------------------------------------------------------- errors


class FixEncodeError(ValueError):
    """Our own code asked to encode something FIX cannot carry (a bug, not a network condition)."""



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
        if not eq or not is_ascii_digits(tag_b, MAX_TAG_DIGITS) or tag_b.startswith(b"0") or not value_b:
            problem = problem or f"malformed field {raw.decode('latin-1')[:40]!r}"
            continue
        fields.append((int(tag_b), value_b.decode("latin-1")))
    msg = FixMessage(fields)
    seq_text = msg.get(MSG_SEQ_NUM)
    seq = parse_ascii_int(seq_text) if seq_text is not None and is_ascii_digits(seq_text) else None
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
