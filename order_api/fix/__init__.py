"""FIX 4.4 for tickfan's execution path (the dialect: ``order_api/FIX.md``).

Takes bytes from a TCP peer and typed orders from the execution workers; gives typed execution reports,
session events and the exact bytes to send. Guarantees: nothing here raises on what the network sends (bad
input is a value: a decode error, a session Reject, a Logout naming the reason); prices stay integers with 4
implied decimals end to end; a session used illegally raises :class:`FixSessionError`, never drifts.

Modules, inside out (the first three are pure, sans-I/O, in the manner of h11 and websockets):

- ``codec``: tag numbers, :class:`FixMessage`, :func:`encode`, the incremental :class:`FixParser`,
  :func:`decode`, :func:`checksum`.
- ``messages``: the typed messages (:class:`NewOrder`, :class:`CancelRequest`, :class:`StatusRequest`,
  :class:`ExecutionReport`, :class:`CancelReject`, :class:`SessionReject`), their enums, session messages.
- ``session``: :class:`FixSession`, one connection's session state machine for either role (bytes and time
  in; events and bytes to send out; ``next_deadline()`` / ``tick(now)``).
- ``connection``: :class:`~order_api.fix.connection.FixConnection`, the one asyncio adapter that drives a
  session over a stream for both roles (read loop, timer loop, writes, event dispatch, teardown).
- ``client``: :class:`~order_api.fix.client.FixClient`, the initiator the execution workers use. The
  acceptor (the market-maker simulator) is ``venue.marketmaker.server``, over the same connection adapter.

The pure names are importable from here; the asyncio ones from their modules.
"""

from .codec import (
    BEGIN_STRING,
    CL_ORD_ID,
    MAX_MESSAGE_SIZE,
    MSG_SEQ_NUM,
    MSG_TYPE,
    SOH,
    DecodeErrorKind,
    FixDecodeError,
    FixEncodeError,
    FixMessage,
    FixParser,
    checksum,
    decode,
    encode,
    utc_timestamp,
)
from .messages import (
    AppMessage,
    CancelReject,
    CancelRequest,
    CxlRejReason,
    ExecType,
    ExecutionReport,
    FixFieldError,
    MsgType,
    NewOrder,
    OrdStatus,
    OrdType,
    ReplaceRequest,
    SessionReject,
    SessionRejectReason,
    Side,
    StatusRequest,
    Tif,
    heartbeat,
    logon,
    logout,
    parse_app,
    parse_fix_qty,
    test_request,
)
from .session import (
    Closed,
    Event,
    FixSession,
    FixSessionError,
    LoggedOn,
    Received,
    RejectReceived,
    Role,
    SessionState,
)

__all__ = [
    "BEGIN_STRING", "CL_ORD_ID", "MAX_MESSAGE_SIZE", "MSG_SEQ_NUM", "MSG_TYPE", "SOH", "AppMessage", "CancelReject",
    "CancelRequest", "Closed", "CxlRejReason", "DecodeErrorKind", "Event", "ExecType", "ExecutionReport",
    "FixDecodeError", "FixEncodeError", "FixFieldError", "FixMessage", "FixParser", "FixSession", "FixSessionError",
    "LoggedOn", "MsgType", "NewOrder", "OrdStatus", "OrdType", "Received", "RejectReceived", "ReplaceRequest", "Role",
    "SessionReject", "SessionRejectReason", "SessionState", "Side", "StatusRequest", "Tif", "checksum", "decode",
    "encode", "heartbeat", "logon", "logout", "parse_app", "parse_fix_qty", "test_request", "utc_timestamp",
]
