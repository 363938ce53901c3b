"""The FIX 4.4 messages tickfan speaks, as typed frozen values (pure: no I/O, no clock reads except where a
caller leaves a transaction time out).

Each application message converts both ways: ``to_fix()`` builds a :class:`~order_api.fix.codec.FixMessage`
(35 and the body; the session adds the header) and ``from_fix()`` validates one, raising
:class:`FixFieldError` naming the offending tag (answer it with a session Reject). :func:`parse_app` picks the
right class by MsgType. Prices are decimal strings converted exactly to integers with 4 implied decimals
("189.2500" <-> 1892500; ``vocab.prices``, the one parser); never floats. Quantities (OrderQty 38, LastQty 32,
LeavesQty 151, CumQty 14) are decimals of shares on the wire ("0.5") and integers of millionths of a share here
(``vocab.quantities``): 500000.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal, TypeVar

from vocab.digits import is_ascii_digits, parse_ascii_int
from vocab.prices import format_price, parse_price
from vocab.quantities import format_qty, parse_qty

from .codec import (
    AVG_PX,
    CL_ORD_ID,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    ENCRYPT_METHOD,
    EXEC_ID,
    EXEC_TYPE,
    HEART_BT_INT,
    INCARNATION,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    MSG_TYPE,
    NO_TRADING_SESSIONS,
    ORD_STATUS,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    POSS_RESEND,
    PRICE,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
    REF_TAG_ID,
    RESET_SEQ_NUM_FLAG,
    SESSION_REJECT_REASON,
    SIDE,
    SYMBOL,
    TEST_REQ_ID,
    TEXT,
    TIME_IN_FORCE,
    TRADING_SESSION_ID,
    TRANSACT_TIME,
    FixEncodeError,
    FixMessage,
    utc_timestamp,
)

_T = TypeVar("_T")
_E = TypeVar("_E", bound=StrEnum)


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
    ORDER_CANCEL_REPLACE_REQUEST = "G"


SESSION_MSG_TYPES = frozenset({MsgType.HEARTBEAT, MsgType.TEST_REQUEST, MsgType.REJECT, MsgType.LOGOUT,
                               MsgType.LOGON, "2", "4"})  # 2 ResendRequest, 4 SequenceReset: not used here


class ExecType(StrEnum):
    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"  # an OrderCancelReplaceRequest done: the report is about the replacement (OrigClOrdID the old)
    REJECTED = "8"
    EXPIRED = "C"  # a day order at its session's end, an opg/cls order its cross did not fill
    TRADE = "F"
    ORDER_STATUS = "I"


class OrdStatus(StrEnum):
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REPLACED = "5"  # the old order of a replace: finished, its replacement goes on under the new ClOrdID
    REJECTED = "8"
    EXPIRED = "C"


class SessionRejectReason(IntEnum):
    INVALID_TAG_NUMBER = 0
    REQUIRED_TAG_MISSING = 1
    TAG_NOT_DEFINED_FOR_MSG_TYPE = 2
    VALUE_OUT_OF_RANGE = 5
    INCORRECT_DATA_FORMAT = 6
    COMP_ID_PROBLEM = 9
    INVALID_MSG_TYPE = 11
    INCORRECT_NUM_IN_GROUP = 16
    OTHER = 99


class CxlRejReason(IntEnum):
    TOO_LATE_TO_CANCEL = 0
    UNKNOWN_ORDER = 1


Side = Literal["buy", "sell"]
OrdType = Literal["market", "limit"]
Tif = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]

_SIDE_TO_FIX: dict[str, str] = {"buy": "1", "sell": "2"}
_SIDE_FROM_FIX: dict[str, Side] = {"1": "buy", "2": "sell"}
_ORD_TYPE_TO_FIX: dict[str, str] = {"market": "1", "limit": "2"}
_ORD_TYPE_FROM_FIX: dict[str, OrdType] = {"1": "market", "2": "limit"}
# TimeInForce (59): 0 Day, 1 GTC, 2 At the Opening (OPG), 3 IOC, 4 FOK, 7 At the Close
_TIF_TO_FIX: dict[str, str] = {"day": "0", "gtc": "1", "opg": "2", "ioc": "3", "fok": "4", "cls": "7"}
_TIF_FROM_FIX: dict[str, Tif] = {"0": "day", "1": "gtc", "2": "opg", "3": "ioc", "4": "fok", "7": "cls"}

# TradingSessionID (336) in NewOrderSingle's trading-session group (FIX 4.4 TrdgSesGrp: 386 NoTradingSessions, then
# one 336 each). FIX 4.4 leaves the values to the counterparties: ours are the US equity day's three sessions. An
# order without the group trades in the regular session only; an extended-hours order lists all three.
SESSION_PRE, SESSION_REGULAR, SESSION_POST = "PRE", "REG", "POST"
EXTENDED_SESSIONS = (SESSION_PRE, SESSION_REGULAR, SESSION_POST)


class FixFieldError(ValueError):
    """A well-framed message whose content is wrong: answer with a session Reject (35=3) naming ``tag``."""

    def __init__(self, tag: int | None, reason: SessionRejectReason, text: str) -> None:
        super().__init__(text)
        self.tag, self.reason, self.text = tag, reason, text


# --------------------------------------------------------------------------------------------- values


def parse_fix_qty(text: str) -> int:
    """A FIX Qty (a decimal: "100", "0.5", "1.000001") as millionths of a share (``vocab.quantities``); more than
    6 significant decimals, a sign or anything but ASCII digits and one point is a ValueError."""
    return parse_qty(text)


def _whole(text: str) -> int:
    """A FIX integer field (a sequence number): "12" or "12.00"; anything else is a ValueError."""
    whole, dot, frac = text.partition(".")
    if not is_ascii_digits(whole) or (dot and frac.strip("0")) or (frac and not is_ascii_digits(frac, len(frac))):
        raise ValueError(f"not a whole number: {text[:40]!r}")
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


def _qty(msg: FixMessage, tag: int, *, positive: bool = False, default: int | None = None,
         parse: Callable[[str], int] = parse_fix_qty) -> int:
    if default is not None and tag not in msg:
        return default
    value = _required(msg, tag)
    try:
        qty = parse(value)
    except ValueError as e:
        raise FixFieldError(tag, SessionRejectReason.INCORRECT_DATA_FORMAT, f"tag {tag}: {e}") from None
    if positive and qty <= 0:
        raise FixFieldError(tag, SessionRejectReason.VALUE_OUT_OF_RANGE, f"tag {tag}: must be positive")
    return qty


def _price(msg: FixMessage, tag: int, *, default: int | None = None) -> int:
    if default is not None and tag not in msg:
        return default
    value = _required(msg, tag)
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


def _extended_hours(msg: FixMessage) -> bool:
    """Whether a NewOrderSingle's trading-session group (386, then that many 336) lists the extended sessions: no
    group, or REG alone, is the regular session only; PRE, REG and POST (any order) are extended hours; anything
    else is refused, naming the tag (a count that is not the 336s right after it: 16, a bad NumInGroup)."""
    fields = msg.fields
    start = next((i for i, (tag, _) in enumerate(fields) if tag == NO_TRADING_SESSIONS), None)
    listed = [v for tag, v in fields if tag == TRADING_SESSION_ID]
    if start is None:
        if listed:
            raise FixFieldError(NO_TRADING_SESSIONS, SessionRejectReason.REQUIRED_TAG_MISSING,
                                f"tag {TRADING_SESSION_ID} outside its group: {NO_TRADING_SESSIONS} missing")
        return False
    count = fields[start][1]
    group = [v for tag, v in fields[start + 1:start + 1 + len(listed)] if tag == TRADING_SESSION_ID]
    if not is_ascii_digits(count, 2) or int(count) != len(listed) or len(group) != len(listed) or not listed:
        raise FixFieldError(NO_TRADING_SESSIONS, SessionRejectReason.INCORRECT_NUM_IN_GROUP,
                            f"tag {NO_TRADING_SESSIONS}: {count!r} is not the number of {TRADING_SESSION_ID} "
                            "fields right after it")
    if sorted(listed) == [SESSION_REGULAR]:
        return False
    if sorted(listed) == sorted(EXTENDED_SESSIONS):
        return True
    raise FixFieldError(TRADING_SESSION_ID, SessionRejectReason.VALUE_OUT_OF_RANGE,
                        f"tag {TRADING_SESSION_ID}: sessions {'+'.join(listed)[:40]!r}: REG alone, or PRE, REG and "
                        "POST (extended hours)")


def _expect_type(msg: FixMessage, msg_type: str) -> None:
    if msg.msg_type != msg_type:
        raise FixFieldError(MSG_TYPE, SessionRejectReason.INVALID_MSG_TYPE,
                            f"expected MsgType {msg_type}, got {msg.msg_type!r}")


def _now_stamp(transact_time: float | None) -> str:
    return utc_timestamp(time.time() if transact_time is None else transact_time)


# --------------------------------------------------------------------------------------------- domain structs

_EXTENDED_GROUP: tuple[tuple[int, str | int | None], ...] = (
    (NO_TRADING_SESSIONS, len(EXTENDED_SESSIONS)), *((TRADING_SESSION_ID, x) for x in EXTENDED_SESSIONS))


@dataclass(frozen=True, slots=True)
class NewOrder:
    """NewOrderSingle (35=D). ``limit_price`` has 4 implied decimals (1892500 = $189.25); None for market.
    ``extended_hours``: it may also trade in the pre-market and after-hours sessions (the trading-session group:
    ``386=3|336=PRE|336=REG|336=POST``); without it, the regular session only (no group on the wire)."""

    cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    ord_type: OrdType = "market"
    limit_price: int | None = None
    tif: Tif = "day"
    extended_hours: bool = False

    def terms(self) -> tuple[str, str, int, str, int | None, str, bool]:
        """What must match for a repeated ClOrdID to be "the same order"."""
        return (self.symbol, self.side, self.qty, self.ord_type, self.limit_price, self.tif, self.extended_hours)

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
            (ORDER_QTY, format_qty(self.qty)),
            (ORD_TYPE, _ORD_TYPE_TO_FIX[self.ord_type]),
            (PRICE, format_price(self.limit_price) if self.limit_price is not None else None),
            (TIME_IN_FORCE, _TIF_TO_FIX[self.tif]),
            *(_EXTENDED_GROUP if self.extended_hours else ()),
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
            extended_hours=_extended_hours(msg),
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
            (ORDER_QTY, format_qty(self.qty)),
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
class ReplaceRequest:
    """OrderCancelReplaceRequest (35=G): replace ``orig_cl_ord_id`` by a limit order ``cl_ord_id`` (a new id) of
    ``qty`` in all (OrderQty is the total: what the old order filled counts against it), at ``limit_price``."""

    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: int
    limit_price: int
    tif: Tif = "day"

    def to_fix(self, transact_time: float | None = None) -> FixMessage:
        if self.qty <= 0 or self.limit_price <= 0:
            raise FixEncodeError(f"a replace needs a positive quantity and limit: {self.qty} at {self.limit_price}")
        return FixMessage.of(
            MsgType.ORDER_CANCEL_REPLACE_REQUEST,
            (ORIG_CL_ORD_ID, self.orig_cl_ord_id),
            (CL_ORD_ID, self.cl_ord_id),
            (SYMBOL, self.symbol),
            (SIDE, _SIDE_TO_FIX[self.side]),
            (ORDER_QTY, format_qty(self.qty)),
            (ORD_TYPE, _ORD_TYPE_TO_FIX["limit"]),
            (PRICE, format_price(self.limit_price)),
            (TIME_IN_FORCE, _TIF_TO_FIX[self.tif]),
            (TRANSACT_TIME, _now_stamp(transact_time)),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> ReplaceRequest:
        _expect_type(msg, MsgType.ORDER_CANCEL_REPLACE_REQUEST)
        if _mapped(msg, ORD_TYPE, _ORD_TYPE_FROM_FIX) != "limit":
            raise FixFieldError(ORD_TYPE, SessionRejectReason.VALUE_OUT_OF_RANGE, "only a limit order replaces")
        limit = _price(msg, PRICE)
        if limit <= 0:
            raise FixFieldError(PRICE, SessionRejectReason.VALUE_OUT_OF_RANGE, "limit price must be positive")
        return cls(
            cl_ord_id=_required(msg, CL_ORD_ID),
            orig_cl_ord_id=_required(msg, ORIG_CL_ORD_ID),
            symbol=_required(msg, SYMBOL),
            side=_mapped(msg, SIDE, _SIDE_FROM_FIX),
            qty=_qty(msg, ORDER_QTY, positive=True),
            limit_price=limit,
            tif=_mapped(msg, TIME_IN_FORCE, _TIF_FROM_FIX),
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
            (LAST_QTY, format_qty(self.last_qty)),
            (LAST_PX, format_price(self.last_px)),
            (LEAVES_QTY, format_qty(self.leaves_qty)),
            (CUM_QTY, format_qty(self.cum_qty)),
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
    """OrderCancelReject (35=9): the cancel (or, ``replace``, the replace) ``cl_ord_id`` of ``orig_cl_ord_id`` was
    refused (CxlRejResponseTo 434: 1 to an OrderCancelRequest, 2 to an OrderCancelReplaceRequest)."""

    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    ord_status: OrdStatus
    reason: CxlRejReason
    text: str = ""
    replace: bool = False

    def to_fix(self) -> FixMessage:
        return FixMessage.of(
            MsgType.ORDER_CANCEL_REJECT,
            (ORDER_ID, self.order_id),
            (CL_ORD_ID, self.cl_ord_id),
            (ORIG_CL_ORD_ID, self.orig_cl_ord_id),
            (ORD_STATUS, OrdStatus(self.ord_status).value),
            (CXL_REJ_RESPONSE_TO, "2" if self.replace else "1"),
            (CXL_REJ_REASON, int(self.reason)),
            (TEXT, self.text or None),
        )

    @classmethod
    def from_fix(cls, msg: FixMessage) -> CancelReject:
        _expect_type(msg, MsgType.ORDER_CANCEL_REJECT)
        reason_text = msg.get(CXL_REJ_REASON, "1") or "1"
        try:
            reason = CxlRejReason(parse_ascii_int(reason_text, 3))
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
            replace=msg.get(CXL_REJ_RESPONSE_TO) == "2",
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
        if reason is not None and is_ascii_digits(reason, 4):
            try:
                reason_value = SessionRejectReason(int(reason))
            except ValueError:
                reason_value = SessionRejectReason.OTHER
        return cls(
            ref_seq_num=_qty(msg, REF_SEQ_NUM, parse=_whole),
            reason=reason_value,
            text=msg.get(TEXT, "") or "",
            ref_tag=int(ref_tag) if ref_tag is not None and is_ascii_digits(ref_tag, 9) else None,
            ref_msg_type=msg.get(REF_MSG_TYPE),
        )


# --------------------------------------------------------------------------------------------- by MsgType

AppMessage = NewOrder | CancelRequest | ReplaceRequest | StatusRequest | ExecutionReport | CancelReject
_APP_TYPES: dict[str, type[AppMessage]] = {
    MsgType.NEW_ORDER_SINGLE: NewOrder, MsgType.ORDER_CANCEL_REQUEST: CancelRequest,
    MsgType.ORDER_CANCEL_REPLACE_REQUEST: ReplaceRequest,
    MsgType.ORDER_STATUS_REQUEST: StatusRequest, MsgType.EXECUTION_REPORT: ExecutionReport,
    MsgType.ORDER_CANCEL_REJECT: CancelReject,
}


def parse_app(msg: FixMessage, accepted: tuple[type[AppMessage], ...]) -> AppMessage:
    """The typed value of an application message, if its MsgType is one of the ``accepted`` classes (what this
    side of the connection takes); else :class:`FixFieldError` with INVALID_MSG_TYPE, to answer with a Reject."""
    cls = _APP_TYPES.get(msg.msg_type)
    if cls is None or cls not in accepted:
        raise FixFieldError(MSG_TYPE, SessionRejectReason.INVALID_MSG_TYPE, f"unsupported MsgType {msg.msg_type}")
    return cls.from_fix(msg)


# --------------------------------------------------------------------------------------------- session messages


def logon(heartbeat_interval: int, *, reset_seq_num: bool = True, incarnation: str | None = None) -> FixMessage:
    """Logon (35=A): no encryption (98=0), HeartBtInt (108), ResetSeqNumFlag (141=Y), and our dialect's
    Incarnation (9100) when the sender has one."""
    return FixMessage.of(MsgType.LOGON, (ENCRYPT_METHOD, 0), (HEART_BT_INT, heartbeat_interval),
                         (RESET_SEQ_NUM_FLAG, "Y" if reset_seq_num else None), (INCARNATION, incarnation or None))


def heartbeat(test_req_id: str | None = None) -> FixMessage:
    return FixMessage.of(MsgType.HEARTBEAT, (TEST_REQ_ID, test_req_id or None))


def test_request(test_req_id: str) -> FixMessage:
    return FixMessage.of(MsgType.TEST_REQUEST, (TEST_REQ_ID, test_req_id))


test_request.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def logout(text: str | None = None) -> FixMessage:
    return FixMessage.of(MsgType.LOGOUT, (TEXT, text or None))
