"""The web app (web/, built into web/dist) in a real browser: Debian's chromium, headless, driven by Playwright
for Python (``executable_path``: no browser is ever downloaded; scripts/ensure-browser.sh installs chromium).

Against `tickfan demo` with trading: the page loads under its CSP, a demo user is picked (a development token),
the watchlist's quotes tick, the chart draws bars (``bars:1s``, the chart's default: a fresh demo has at most one
1-minute bar, while 1-second bars pile up within seconds), a market order from the ticket is shown filled (live
on the orders channel), a resting limit order is cancelled from the open orders, and a page of another origin is
refused both the API and the WebSocket. A screenshot goes to build/web-app.png.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import playwright.sync_api as playwright_sync
import pytest

from tests.conftest import PrivateRedis, free_port, wait_until
from tests.e2e.conftest import Launch
from tests.order_api.conftest import drop_databases

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TICKFAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER = "postgresql://postgres@127.0.0.1:5432"
_PREFIX = f"{os.environ['TICKFAN_TEST_DB']}_web" if os.environ.get("TICKFAN_TEST_DB") else "tickfan_web"
DSNS = [f"{SERVER}/{_PREFIX}_0", f"{SERVER}/{_PREFIX}_1"]
WAIT = 60.0  # ms-level UI work, but on 2 loaded cores a demo and a browser share them


@pytest.fixture(scope="module")
def demo(launch_module_demo: Launch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} missing: run scripts/ensure-browser.sh (make test does)")
    asyncio.run(drop_databases(DSNS))
    state = tmp_path_factory.mktemp("state")
    with PrivateRedis() as redis:
        env = {"TICKFAN_JWT_SECRET": "", "XDG_STATE_HOME": str(state)}  # the development key: the user picker
        d = launch_module_demo("--market-maker", f"127.0.0.1:{free_port()}", "--trading-redis", redis.url,
                               *(a for dsn in DSNS for a in ("--db", dsn)), "--rate", "2000", "--duration", "180",
                               trading=True, env=env)
        yield {"http": d.http, "ws": d.ws, "ws_port": d.ports["ws"]}
        d.stop()


@pytest.fixture(scope="module")
def pw() -> Iterator[Any]:
    """One Playwright session for the module: while it is open its event loop counts as running in this
    thread, so a second ``sync_playwright()`` beside it is refused ("Sync API inside the asyncio loop")."""
    with playwright_sync.sync_playwright() as session:
        yield session


@pytest.fixture(scope="module")
def browser(pw: Any, demo: dict[str, Any]) -> Iterator[Any]:
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


def number(page: Any, selector: str, attribute: str) -> int:
    """An element's numeric data attribute (0 while absent). Polled from here: the page's CSP forbids the
    string evaluation Playwright's wait_for_function would use."""
    value = page.get_attribute(selector, attribute)
    return int(value) if value else 0


def text_of(page: Any, selector: str) -> str:
    return str(page.locator(selector).first.text_content() or "")


def test_the_app_shows_quotes_bars_and_trades_in_a_browser(demo: dict[str, Any], browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    # errors and warnings (a CSP violation is one); an HTTP refusal the page shows is the network's, not a problem
    page.on("console", lambda m: problems.append(m.text)
            if m.type in ("error", "warning") and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{demo['http']}/")
    page.wait_for_selector("body[data-ready=true]", timeout=WAIT * 1000)
    page.wait_for_selector("#conn[data-state=open]", timeout=WAIT * 1000)

    # the watchlist opens with AAPL, TSLA, NVDA and ticks: each row's seq moves on
    symbols = page.eval_on_selector_all("#watchlist tbody tr", "rows => rows.map(r => r.dataset.symbol)")
    assert symbols == ["AAPL", "TSLA", "NVDA"]
    aapl = "#watchlist tr[data-symbol=AAPL]"
    wait_until(lambda: number(page, aapl, "data-seq") > 0, WAIT, "a first AAPL quote")
    first = number(page, aapl, "data-seq")
    wait_until(lambda: number(page, aapl, "data-seq") > first, WAIT, "AAPL ticking")
    assert text_of(page, "#watchlist tr[data-symbol=AAPL] .bid") not in ("", "—")

    # the chart draws bars: the history, then live 1-second bars appended
    wait_until(lambda: number(page, "#chart", "data-bars") >= 3, WAIT, "three bars on the chart")
    assert page.locator("#chart canvas").count() > 0

    # sign in as alice: the user picker gets a development token; the orders stream opens with a ticket
    page.select_option("#user", "alice")
    page.wait_for_selector("#orders-conn[data-state=open]", timeout=WAIT * 1000)
    wait_until(lambda: text_of(page, "#account").startswith("alice"), WAIT, "alice's account shown")

    # a refusal's code and message are shown as text: a limit order without a price
    page.select_option("#t-type", "limit")
    page.fill("#t-limit", "")
    page.click("#t-submit")
    page.wait_for_selector("#ticket-result.error", timeout=WAIT * 1000)
    refusal = text_of(page, "#ticket-result")
    assert ":" in refusal and "<" not in refusal, refusal

    # a market buy from the ticket: filled, seen live on the orders channel and in the positions
    symbol = tradable(demo["http"])
    page.fill("#t-symbol", symbol)
    page.select_option("#t-type", "market")
    page.select_option("#t-side", "buy")
    page.fill("#t-qty", "10")
    page.click("#t-submit")
    page.wait_for_selector("#ticket-result.ok", timeout=WAIT * 1000)
    page.wait_for_selector("#updates li[data-status=filled]", timeout=WAIT * 1000)
    page.wait_for_selector(f"#positions tr[data-symbol={symbol}]", timeout=WAIT * 1000)

    # a resting limit buy 5% under the bid (inside the 10% collar): open, then cancelled from its row
    bid = float(httpx.get(f"{demo['http']}/v1/quotes", params={"symbols": symbol}, timeout=5).json()
                ["quotes"][0]["bid_price"])
    page.select_option("#t-type", "limit")
    page.fill("#t-limit", f"{bid * 0.95:.2f}")
    page.select_option("#t-tif", "day")
    page.click("#t-submit")
    row = page.locator("#open-orders tbody tr").first
    row.wait_for(timeout=WAIT * 1000)
    order_id = row.get_attribute("data-order-id")
    row.locator("button.cancel").click()
    page.wait_for_selector(f"#updates li[data-order-id='{order_id}'][data-status=cancelled]", timeout=WAIT * 1000)
    page.wait_for_selector(f"#open-orders tr[data-order-id='{order_id}']", state="detached", timeout=WAIT * 1000)

    (ROOT / "build").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "build" / "web-app.png"))
    assert not problems, problems  # no CSP violation, no script error
    page.close()


FOREIGN_PAGE = "<!doctype html><title>elsewhere</title><p>a page of another site</p>"


def test_a_page_of_another_origin_is_refused_the_api_and_the_stream(demo: dict[str, Any], browser: Any) -> None:
    """A page served from another port of the same host is another origin: its POST and its WebSocket are
    refused by the node (the browser sees a CORS failure and a socket that never opens), while the very same
    calls from the node's own page are answered."""
    foreign = f"http://127.0.0.1:{free_port()}"
    page = browser.new_page()
    page.route(f"{foreign}/**", lambda route: route.fulfill(body=FOREIGN_PAGE, content_type="text/html"))
    page.goto(f"{foreign}/")
    assert page.evaluate(POST_TOKEN, demo["http"]) == "refused"
    assert page.evaluate(OPEN_STREAM, demo["ws"]) == "closed 1006"
    page.close()

    # the control: the same calls from the node's own page are answered
    own = browser.new_page()
    own.goto(f"{demo['http']}/")
    own.wait_for_selector("body[data-ready=true]", timeout=WAIT * 1000)
    assert own.evaluate(POST_TOKEN, demo["http"]) == "answered 200"
    assert own.evaluate(OPEN_STREAM, demo["ws"]) == "open"
    own.close()


# evaluated as functions (Playwright passes them without eval, which the app page's CSP would refuse)
POST_TOKEN = """async (api) => {
    try {
        const r = await fetch(api + '/v1/dev/token', {method: 'POST', headers: {'content-type': 'application/json'},
                                                     body: JSON.stringify({user: 'alice'})});
        return 'answered ' + r.status;
    } catch (e) { return 'refused'; }
}"""
OPEN_STREAM = """(url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => { ws.close(); resolve('open'); };
    ws.onclose = (e) => resolve('closed ' + e.code);
})"""


def tradable(http: str) -> str:
    """A hot name not halted right now (the simulator halts the odd symbol for a few seconds)."""
    def pick() -> str | None:
        quotes = httpx.get(f"{http}/v1/quotes", params={"symbols": "AAPL,MSFT,NVDA,TSLA,AMZN"}, timeout=5).json()
        return next((str(q["symbol"]) for q in quotes["quotes"]
                     if not q["halted"] and not q["stale"] and q.get("bid_price")), None)

    wait_until(lambda: pick() is not None, WAIT, "a tradable symbol")
    found = pick()
    assert found is not None
    return found


def test_the_page_reconnects_when_the_node_restarts(launch_demo: Launch, pw: Any) -> None:
    """The SDK under a page: the node stops (the indicator says reconnecting), a new one starts on the same
    ports, and the same page, never reloaded, is open again with its watchlist ticking. Before that, the
    demo's LULD pauses show as badges."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} missing: run scripts/ensure-browser.sh (make test does)")
    # LULD pauses of TSLA and NVDA in turn, a second long, from a second after the start: the halted badge
    first = launch_demo("--luld-every", "2", "--luld-pause", "1", symbols=50)
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # on the module's Playwright session
    try:
        page = b.new_page()
        page.goto(f"{first.http}/")
        page.wait_for_selector("#conn[data-state=open]", timeout=WAIT * 1000)
        aapl = "#watchlist tr[data-symbol=AAPL]"
        wait_until(lambda: number(page, aapl, "data-seq") > 0, WAIT, "a first AAPL quote")
        badge = page.locator("#watchlist tr[data-symbol=TSLA] .badge.halted, "
                             "#watchlist tr[data-symbol=NVDA] .badge.halted").first
        badge.wait_for(timeout=WAIT * 1000)
        assert badge.text_content() in ("paused", "halted")

        first.stop()
        page.wait_for_selector("#conn[data-state=reconnecting]", timeout=WAIT * 1000)
        launch_demo(symbols=50, ports=first.ports)
        page.wait_for_selector("#conn[data-state=open]", timeout=WAIT * 1000)
        # a restarted node counts seq from scratch: ticking again means new quotes reach the rows
        before = number(page, aapl, "data-seq")
        wait_until(lambda: number(page, aapl, "data-seq") != before, WAIT, "AAPL ticking after the restart")
    finally:
        b.close()
