"""The messages of the client protocol that need no connection state: the upgrade request's target, errors and
resume verdicts (split from ``fanout.protocol``, which re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tickfan_proto import stream_pb2 as pb


def recovered_message(symbol: str, verdict: str, *, missing: tuple[int, int] | None = None,
                      epoch_changed: bool = False, reason: str = "") -> pb.ServerMessage:
    first, last = missing or (0, 0)
    return pb.ServerMessage(recovered=pb.Recovered(
        symbol=symbol, verdict=verdict, missing_from_trade_seq=first, missing_to_trade_seq=last,
        epoch_changed=epoch_changed, reason=reason))


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What the upgrade request's target asks for."""

    json_mode: bool
    token: str | None  # deprecated: tokens in URLs end up in logs; use a ticket or the Authorization header
    ticket: str | None = None


def parse_upgrade(target: str, path: str) -> Upgrade | None:
    """The request target (``/v1/stream?format=json&token=...``) of an upgrade; None when not ``path`` (404)."""
    url = urlsplit(target)
    if url.path != path:
        return None
    query = parse_qs(url.query, keep_blank_values=True)
    return Upgrade(json_mode=query.get("format", ["protobuf"])[0] == "json", token=query.get("token", [None])[0],
                   ticket=query.get("ticket", [None])[0])


def error_message(code: str, message: str, symbols: list[str] | None = None) -> pb.ServerMessage:
    return pb.ServerMessage(error=pb.Error(code=code, message=message, symbols=symbols or []))

