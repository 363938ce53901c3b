"""Resume after a reconnect, liveness in heartbeats, and send times, against a real server over real sockets.

The feed is the simulator's, applied to in-process books at 20,000 messages a second while a client is
away; what it receives before and after is checked against the books' own trade_seq numbering.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import websockets

from fanout.server import FanoutServer
from ingest.itch import decode as itch_decode
from ingest.messages import Trade
from normalize import Books
from tests.conftest import WAIT, eventually
from tickfan_proto import stream_pb2 as pb
from venue.simulator import ExchangeSimulator

from .conftest import bump, client_message, config, decode, fanout_server, make_books, subscribe, until

SECRET = "resume-test-secret"


def resume(token: str, *symbols: str, channels: tuple[str, ...] = ()) -> bytes:
    return client_message(subscribe=pb.Subscribe(symbols=symbols, channels=channels, resume_token=token))


class Received:
    """Every trade print and verdict one connection got, in order, and its newest resume token."""

    def __init__(self) -> None:
        self.trades: dict[str, list[int]] = {}
        self.verdicts: list[pb.Recovered] = []
        self.token = ""
        self.heartbeats: list[pb.Heartbeat] = []
        self.errors: list[pb.Error] = []

    def take(self, msg: pb.ServerMessage) -> None:
        kind = msg.WhichOneof("kind")
        if kind == "trades":
            for t in msg.trades.trades:
                self.trades.setdefault(t.symbol, []).append(t.trade_seq)
        elif kind == "recovered":
            self.verdicts.append(msg.recovered)
        elif kind == "heartbeat":
            self.heartbeats.append(msg.heartbeat)
            self.token = msg.heartbeat.resume_token or self.token
        elif kind == "subscribed":
            self.token = msg.subscribed.resume_token
        elif kind == "error":
            self.errors.append(msg.error)


async def read_into(ws: Any, got: Received) -> None:
    try:
        async for raw in ws:
            got.take(decode(raw))
    except websockets.ConnectionClosed:
        pass


async def run_feed(books: Books, server: FanoutServer, raw: list[bytes], rate: int, stop: asyncio.Event) -> None:
    """Apply the simulator's messages at ``rate`` a second, in 10 ms slices, telling the server each time."""
    per_slice = rate // 100
    i = 0
    start = time.monotonic()
    while not stop.is_set() and i < len(raw):
        books.apply_batch([itch_decode(m) for m in raw[i:i + per_slice]])
        i += per_slice
        server.notify()
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))


def consecutive(seqs: list[int]) -> bool:
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_resume_after_3s_disconnect_at_20000_msgs_loses_no_print() -> None:
    sim = ExchangeSimulator(40, seed=11)
    raw = sim.generate_encoded(200_000)
    hot = sim.tickers[:4]

    async def main() -> None:
        books = Books(trade_capacity=200_000)
        books.apply_batch([itch_decode(m) for m in raw[:5_000]])  # the opening
        async with fanout_server(books, config(resume_secret=SECRET, heartbeat_interval=0.2)) as server:
            stop = asyncio.Event()
            feed = asyncio.create_task(run_feed(books, server, raw[5_000:], 20_000, stop))
            before, after = Received(), Received()
            async with websockets.connect(server.url) as ws:
                await ws.send(subscribe(*hot, channels=("trades", "quotes")))
                reader = asyncio.create_task(read_into(ws, before))
                await eventually(lambda: len(before.heartbeats) >= 3 and sum(map(len, before.trades.values())) > 50)
                token = before.token
                await ws.close()
                await reader
            state = server.tokens.decode(token)
            assert state is not None
            await asyncio.sleep(3.0)  # away for 3 s while the feed runs on
            async with websockets.connect(server.url) as ws:
                await ws.send(resume(token))
                reader = asyncio.create_task(read_into(ws, after))
                await eventually(lambda: len(after.verdicts) == len(hot))
                await asyncio.sleep(0.5)
                stop.set()
                await feed
                last = {sym: int(books.trade_seq[books.locate_of[sym]]) for sym in hot}
                await eventually(lambda: all(after.trades.get(s, [0])[-1] == last[s] for s in hot if last[s]))
                await ws.close()
                await reader
            assert not after.errors
            assert {v.symbol: v.verdict for v in after.verdicts} == dict.fromkeys(hot, "complete")
            assert not any(v.epoch_changed for v in after.verdicts)
            replayed = 0
            for sym in hot:
                seen = state.symbols[sym][1]
                got = after.trades.get(sym, [])
                # after the reconnect: every print from the token's position on, once each, in order
                assert got and got[0] == seen + 1 and consecutive(got) and got[-1] == last[sym], sym
                # and with what came before the disconnect, nothing between is missing
                assert before.trades[sym][-1] >= seen and consecutive(before.trades[sym])
                replayed += len(got)
            assert server.stats.prints_replayed > 0 and replayed > 100

    asyncio.run(main())


def trade(books: Books, loc: int, n: int) -> None:
    sym = books.symbol_of[loc] or ""
    for _ in range(n):
        books.apply(Trade(loc, 0, 7, 0, "B", 10, sym, 1_000_000, 1))


async def token_after_subscribe(url: str, *symbols: str) -> str:
    async with websockets.connect(url) as ws:
        await ws.send(subscribe(*symbols, channels=("trades",)))
        return (await until(ws, "subscribed")).subscribed.resume_token


async def resumed(url: str, token: str, verdicts: int, json_mode: bool = False) -> Received:
    got = Received()
    async with websockets.connect(url + ("?format=json" if json_mode else "")) as ws:
        if json_mode:
            await ws.send(json.dumps({"subscribe": {"resumeToken": token}}))
        else:
            await ws.send(resume(token))
        while len(got.verdicts) < verdicts:
            got.take(decode(await asyncio.wait_for(ws.recv(), WAIT)))
    return got


def test_a_history_too_small_names_the_exact_range_it_could_not_replay() -> None:
    async def main() -> None:
        books = make_books()
        async with fanout_server(books, config(resume_secret=SECRET, resume_history_prints=5)) as server:
            trade(books, 1, 3)
            server.notify()
            await eventually(lambda: server.hub.last_trade_seq[1] == 3)
            token = await token_after_subscribe(server.url, "AAPL")
            trade(books, 1, 20)  # 4..23 while away; only the last 5 are kept
            server.notify()
            await eventually(lambda: server.hub.last_trade_seq[1] == 23)
            got = await resumed(server.url, token, 1)
            (v,) = got.verdicts
            assert (v.symbol, v.verdict, v.missing_from_trade_seq, v.missing_to_trade_seq) == ("AAPL", "partial", 4, 18)
            assert got.trades["AAPL"] == [19, 20, 21, 22, 23]

    asyncio.run(main())


def test_a_restarted_node_says_so_and_a_new_feed_session_is_not_recoverable() -> None:
    async def main() -> None:
        books = make_books()
        async with fanout_server(books, config(resume_secret=SECRET)) as first:
            token = await token_after_subscribe(first.url, "AAPL", "TSLA")
        # the node restarts over the same feed session (the books live on, as in Redis mode): nothing was
        # missed, the verdict is complete, and says another node epoch answered
        async with fanout_server(books, config(resume_secret=SECRET)) as second:
            got = await resumed(second.url, token, 2)
            assert {(v.symbol, v.verdict, v.epoch_changed) for v in got.verdicts} == {
                ("AAPL", "complete", True), ("TSLA", "complete", True)}
        # a node restart that starts a new feed session: trade_seq restarted, nothing can be replayed
        async with fanout_server(make_books(), config(resume_secret=SECRET)) as third:
            got = await resumed(third.url, token, 2, json_mode=True)
            assert {(v.symbol, v.verdict, v.epoch_changed) for v in got.verdicts} == {
                ("AAPL", "not_recoverable", True), ("TSLA", "not_recoverable", True)}

    asyncio.run(main())


def test_forged_foreign_oversized_and_garbage_tokens_are_not_recoverable_never_an_error() -> None:
    async def main() -> None:
        books = make_books()
        async with fanout_server(books, config(resume_secret="another-cluster")) as foreign:
            foreign_token = await token_after_subscribe(foreign.url, "AAPL")
        async with fanout_server(books, config(resume_secret=SECRET)) as server:
            good = await token_after_subscribe(server.url, "AAPL")
            flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
            for token in (flipped, foreign_token, "A" * (server.tokens.max_chars + 1), "not base64 !!", "AAAA"):
                got = await resumed(server.url, token, 1)
                (v,) = got.verdicts
                assert v.verdict == "not_recoverable" and v.symbol == "" and v.reason, token
                assert not got.errors
                assert got.token  # the ack still came, with a fresh token

    asyncio.run(main())


def test_heartbeats_carry_liveness_that_advances_and_the_protocol_version() -> None:
    async def main() -> None:
        books = make_books()
        async with fanout_server(books, config(heartbeat_interval=0.1, heartbeat_max_symbols=2),
                                 feed_state=lambda: "recovering") as server:
            async with websockets.connect(server.url + "?format=json") as ws:
                await ws.send(json.dumps({"subscribe": {"symbols": ["AAPL", "TSLA", "MSFT"],
                                                        "channels": ["quotes", "trades"]}}))
                ack = await until(ws, "subscribed")
                assert ack.subscribed.protocol_version == 2 and ack.subscribed.resume_token
                first = (await until(ws, "heartbeat")).heartbeat
                assert len(first.symbols) == 2  # capped; the next heartbeat shows the others
                names = {s.symbol for s in first.symbols}
                second = (await until(ws, "heartbeat")).heartbeat
                assert names | {s.symbol for s in second.symbols} == {"AAPL", "TSLA", "MSFT"}
                books.stale[2] = True
                trade(books, 1, 1)
                books.exchange_time[1] = 10**9
                server.notify()
                while True:
                    hb = (await until(ws, "heartbeat")).heartbeat
                    live = {s.symbol: s for s in hb.symbols}
                    if "AAPL" in live and live["AAPL"].seq == int(books.seq[1]):
                        break
                assert live["AAPL"].last_event_time_ns == 10**9 and live["AAPL"].feed_state == "recovering"
                assert hb.resume_token and hb.server_time_ns > 0
                while "TSLA" not in live:
                    live = {s.symbol: s for s in (await until(ws, "heartbeat")).heartbeat.symbols}
                assert live["TSLA"].feed_state == "stale"

    asyncio.run(main())


def test_send_time_in_every_batch_in_binary_and_json() -> None:
    async def main() -> None:
        books = make_books()
        async with fanout_server(books, config()) as server:
            async with websockets.connect(server.url) as b, websockets.connect(server.url + "?format=json") as j:
                for ws in (b, j):
                    await ws.send(subscribe("AAPL", channels=("quotes", "trades", "depth")))
                    await until(ws, "subscribed")
                t0 = time.time_ns()
                trade(books, 1, 2)
                bump(books, 1, 1_000_001)
                server.notify()
                for ws in (b, j):
                    kinds: dict[str, int] = {}
                    while len(kinds) < 5:
                        raw = await asyncio.wait_for(ws.recv(), WAIT)
                        msg = decode(raw)
                        kind = msg.WhichOneof("kind")
                        if kind in ("snapshot", "quotes", "trades", "depth"):
                            key = kind + ("_snapshot" if kind == "depth" and msg.depth.snapshot else "")
                            kinds[key] = getattr(msg, kind).send_time_ns
                            if isinstance(raw, str):
                                assert json.loads(raw)[kind]["sendTimeNs"] == str(kinds[key])
                            else:
                                assert raw == msg.SerializeToString()
                    assert all(v >= t0 - 10**9 for v in kinds.values()), kinds

    asyncio.run(main())


def test_restoring_a_token_spends_the_symbol_budget() -> None:
    async def main() -> None:
        books = make_books()
        settings = config(resume_secret=SECRET, max_symbols=3, symbol_burst=3, max_symbols_per_second=0.001)
        async with fanout_server(books, settings) as server:
            token = await token_after_subscribe(server.url, "AAPL", "TSLA")
            async with websockets.connect(server.url) as ws:
                await ws.send(subscribe("MSFT", "AAPL", channels=("trades",)))  # 2 of the 3 in the budget
                await until(ws, "subscribed")
                await ws.send(resume(token))  # 2 more: over the budget
                err = (await until(ws, "error")).error
                assert err.code == "symbol_rate_limited"
                ack = (await until(ws, "subscribed")).subscribed
                assert list(ack.symbols) == ["AAPL", "MSFT"]

    asyncio.run(main())
