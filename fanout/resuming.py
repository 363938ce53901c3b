"""A connection's resume (a mixin of the server's connection, ``fanout.server._Client``): replay what a valid
token's connection missed, then one ``Recovered`` verdict per symbol of its trades channel; and the resume token
itself, made again only when what it says changed.

What to replay is decided by ``fanout.resume.plan_replay`` (pure); this part follows the hub to the books' feed
session (``Hub.sync_epoch``) before any floor is set, waits for the edge to follow the symbols' partitions
(``Follow``), fetches the prints (this node's history, and in Redis mode the one every node writes) and writes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from picows import WSTransport

from tickfan_proto import stream_pb2 as pb

from .encode import trade_message
from .follow import FOLLOW_TIMEOUT
from .hub import Subscriber
from .protocol import CHANNELS, ClientProtocol, ResumeRequest, recovered_message
from .resume import NOT_RECOVERABLE, ResumeState, plan_replay

if TYPE_CHECKING:
    from .server import FanoutServer

log = logging.getLogger("tickfan.fanout")
REPLAY_BATCH = 500  # replayed prints per TradeBatch frame


class Resuming:
    """The resume half of a connection; the connection gives it these."""

    __slots__ = ()  # the connection's own slots hold them (no dict per connection)

    server: FanoutServer
    sub: Subscriber
    protocol: ClientProtocol
    transport: WSTransport | None
    closing: bool
    _token: tuple[int, int, str] | None

    def _send(self, transport: WSTransport, message: pb.ServerMessage) -> None:
        raise NotImplementedError  # the connection's

    def _resume(self, req: ResumeRequest) -> None:
        """Replay what a valid token's connection missed, then one Recovered per symbol of its trades channel.

        In Redis mode the history any node can read is fetched first (a task): until it is back, live prints of
        those symbols are held from this client (a floor no print passes), and whatever a flush passed meanwhile
        is in this node's own history, so nothing falls between the two."""
        server = self.server
        node_changed = req.node_epoch != server.node_epoch
        server.hub.sync_epoch()  # before any floor is set (``Hub.sync_epoch``)
        if req.feed_epoch != server.feed_epoch():
            for sym in sorted(s for s, _ in req.trades.values()):
                self._verdict(recovered_message(
                    sym, NOT_RECOVERABLE, epoch_changed=True,
                    reason="the feed session changed since the token (trade_seq restarted at 1)"))
            return
        if server.remote_history is None or not req.trades:
            self._replay(req, {}, node_changed)
            return
        for loc in req.trades:
            self.sub.trade_floor[loc] = 1 << 62
        task = asyncio.create_task(self._resume_remote(req, node_changed))
        server._tasks.add(task)
        task.add_done_callback(server._tasks.discard)

    async def _resume_remote(self, req: ResumeRequest, node_changed: bool) -> None:
        fetch = self.server.remote_history
        assert fetch is not None
        # the history is read only once the edge follows these symbols' partitions (Redis confirmed them): a
        # print published before is in the stream, one after reaches the live feed; the gate waited for this
        # already, unless it gave up, so this is usually nothing to wait for
        pending = self.server.follow({"trades": list(req.trades)}) if self.server.follow is not None else None
        if pending is not None:
            try:
                await asyncio.wait_for(pending, FOLLOW_TIMEOUT)
            except Exception:
                log.warning("following the partitions of a resume's symbols failed", exc_info=True)
        remote: dict[int, list[pb.Trade]] = {}
        for loc, (sym, seen) in req.trades.items():
            try:
                remote[loc] = await fetch(sym, seen, req.feed_epoch)
            except Exception:  # Redis down: what this node holds is still replayed; the verdict says the rest
                log.warning("reading the trade history of %s failed", sym, exc_info=True)
                remote[loc] = []
        if self.transport is None or self.transport.is_disconnected or self.closing:
            return
        self._replay(req, remote, node_changed)

    def _replay(self, req: ResumeRequest, remote: dict[int, list[pb.Trade]], node_changed: bool) -> None:
        server, hub, sub = self.server, self.server.hub, self.sub
        hub.sync_epoch()
        now = time.time_ns()
        local = hub.history.windows({loc: (seen, int(hub.last_trade_seq[loc]))
                                     for loc, (_, seen) in req.trades.items()}, now) if hub.history else {}
        for loc, (sym, seen) in sorted(req.trades.items(), key=lambda kv: kv[1][0]):
            held: dict[int, pb.Trade] = {t.trade_seq: t for t in remote.get(loc, ()) if t.trade_seq > seen}
            prints = local.get(loc)
            if prints is not None:
                for i in range(len(prints.locate)):
                    held.setdefault(int(prints.trade_seq[i]), trade_message(sym, prints, i))
            upto = max(int(hub.last_trade_seq[loc]), max(held, default=0))
            plan = plan_replay(seen, upto, sorted(held))
            replay = [held[n] for n in range(plan.replay_from, plan.upto + 1)]
            for i in range(0, len(replay), REPLAY_BATCH):
                self._send_now(pb.ServerMessage(trades=pb.TradeBatch(trades=replay[i:i + REPLAY_BATCH],
                                                                     send_time_ns=time.time_ns())))
            server.stats.prints_replayed += len(replay)
            if loc in sub.watching("trades"):
                sub.trade_seen[loc] = max(seen, upto)
                sub.trade_floor[loc] = max(seen, upto)
                sub.version += 1
            self._verdict(recovered_message(sym, plan.verdict, missing=plan.missing, epoch_changed=node_changed,
                                            reason="" if plan.missing is None else
                                            "older than the trade history kept (see missing_*_trade_seq)"))

    def _verdict(self, message: pb.ServerMessage) -> None:
        stats = self.server.stats
        verdict = message.recovered.verdict
        stats.resumes[verdict] = stats.resumes.get(verdict, 0) + 1
        self._send_now(message)

    def _send_now(self, message: pb.ServerMessage) -> None:
        transport = self.transport
        if transport is not None and not transport.is_disconnected:
            self._send(transport, message)

    def resume_token(self) -> str:
        """What this connection has been sent, signed: its subscriptions, and per trades symbol the last
        trade_seq. Made again only when that changed (most clients' heartbeats reuse it)."""
        server = self.server
        version, epoch = self.sub.version, server.feed_epoch()
        cached = self._token
        if cached is not None and cached[0] == version and cached[1] == epoch:
            return cached[2]
        bits: dict[str, int] = {}
        for i, channel in enumerate(CHANNELS):
            for sym in self.protocol.subscriptions[channel]:
                bits[sym] = bits.get(sym, 0) | 1 << i
        trades = self.protocol.subscriptions["trades"]
        seen = self.sub.trade_seen if trades else {}  # (made on first use: a subscriber of no trades has none)
        symbols = {sym: (b, seen.get(trades[sym], 0) if sym in trades else 0) for sym, b in bits.items()}
        token = server.tokens.encode(ResumeState(server.feed_epoch(), server.node_epoch, symbols))
        self._token = (version, epoch, token)  # type: ignore[misc]  # a slot of the connection class (``__slots__`` above)
        return token
