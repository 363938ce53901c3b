"""``tickfan split SYMBOL N:M``: --help, the refusals (bad ratio, unknown symbol, no price for a remainder) and a
split applied to the test shards and applied again (idempotent)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from order_api.model import OrderRequest, Quote
from tests.order_api.conftest import TEST_DSNS, ScopedLedger, fresh_shards
from tickfan.cli import command_parser
from vocab.quantities import QTY_SCALE as S

pytestmark = pytest.mark.anyio

PRICE = 50 * 10_000
QUOTE = Quote(bid=PRICE - 100, ask=PRICE + 100, last=PRICE, halted=False, stale=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser, main = command_parser("split")
    args = parser.parse_args([*argv, *(a for dsn in TEST_DSNS for a in ("--db", dsn))])
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_names_the_ratio_and_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    parser, _ = command_parser("split")
    text = parser.format_help()
    for flag in ("N:M", "--effective", "--price", "--id", "--wait", "--db"):
        assert flag in text


@pytest.mark.parametrize(("argv", "says"), [
    (("AAPL", "2"), "not a split ratio"),
    (("AAPL", "3:3"), "changes nothing"),
    (("AAPL", "0:1"), "1..10000"),
    (("AAPL", "1:10"), "--price"),  # a reverse split can leave remainders: their cash-in-lieu needs a price
    (("AAPL", "2:1", "--effective", "tomorrow"), "not a date"),
    (("AAPL", "3:2", "--price", "-5"), "--price"),
    (("NOT A SYMBOL", "2:1"), "not a ticker symbol"),
])
def test_bad_splits_are_refused_before_anything_changes(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                                                        says: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and says in err, err


async def test_unknown_symbol_is_refused_and_a_split_applies_once(capsys: pytest.CaptureFixture[str]) -> None:
    await fresh_shards()
    code, _, err = await asyncio.to_thread(run, capsys, "ZZNOPE", "2:1")
    assert code == 2 and "unknown symbol ZZNOPE" in err
    sym = "C" + uuid.uuid4().hex[:6].upper()
    ledger = await ScopedLedger.connect(TEST_DSNS, max_size=2)
    assert isinstance(ledger, ScopedLedger)
    try:
        u = ledger.user("cli")
        await ledger.deposit(u, 1_000 * 10_000)
        placed, _ = await ledger.place(u, OrderRequest(sym, "buy", 3 * S, "limit", PRICE, "day", "k"), QUOTE)
        await ledger.fill(u, placed["order_id"], "E1", 3 * S, PRICE)
        code, out, _ = await asyncio.to_thread(run, capsys, sym.lower(), "2:1", "--effective", "2026-12-01")
        assert code == 0 and f"split {sym}:2:1:2026-12-01" in out, out
        rows = await ledger.positions(u)
        assert [(r["symbol"], r["qty"]) for r in rows] == [(sym, 6 * S)]
        code, out, _ = await asyncio.to_thread(run, capsys, sym, "2:1", "--effective", "2026-12-01")
        assert code == 0 and "already" in out and (await ledger.positions(u))[0]["qty"] == 6 * S
        assert await ledger.check() == []
    finally:
        await ledger.close()
