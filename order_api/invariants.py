"""The ledger's invariants as SQL (read by :meth:`order_api.db.Ledger.check`): each query returns the rows that
break one rule, in the scope ``$1`` (a list of user ids, or NULL for everyone). Quantities are in millionths of a
share (``vocab.quantities.QTY_SCALE``), money in 1/10,000 of a dollar; products of the two are computed in
``numeric`` (they overflow BIGINT)."""

from __future__ import annotations

from order_api.account import settlement_invariants
from order_api.splits import split_invariants


def _mine(column: str) -> str:
    """The scope of :meth:`Ledger.check`: ``$1`` is the users' ids, or NULL for everyone."""
    return f"($1::text[] IS NULL OR {column} = ANY($1::text[]))"


def _in_scope() -> str:
    """Journal transactions in the scope of :meth:`Ledger.check`: those that touch one of the users."""
    return "($1::text[] IS NULL OR txn_id IN (SELECT txn_id FROM journal WHERE user_id = ANY($1::text[])))"


INVARIANTS: list[tuple[str, str]] = [
    # a transaction balances across every account it touches, the counterparty ('') included
    (f"SELECT txn_id, asset, sum(amount) AS total FROM journal WHERE {_in_scope()} "
     "GROUP BY txn_id, asset HAVING sum(amount) <> 0",
     "journal transaction does not balance"),
    ("SELECT a.user_id, a.cash, coalesce(j.total, 0) AS journal FROM accounts a LEFT JOIN "
     "(SELECT user_id, sum(amount) AS total FROM journal WHERE account = 'cash' GROUP BY user_id) j "
     f"USING (user_id) WHERE a.cash <> coalesce(j.total, 0) AND {_mine('a.user_id')}",
     "cash differs from its journal"),
    ("SELECT a.user_id, a.cash_held, coalesce(j.total, 0) AS journal FROM accounts a LEFT JOIN "
     "(SELECT user_id, sum(amount) AS total FROM journal WHERE account = 'cash_held' GROUP BY user_id) j "
     f"USING (user_id) WHERE a.cash_held <> coalesce(j.total, 0) AND {_mine('a.user_id')}",
     "cash held differs from its journal"),
    ("SELECT p.user_id, p.symbol, p.qty, p.qty_held, j.shares, j.held FROM positions p FULL JOIN "
     "(SELECT user_id, asset AS symbol, sum(amount) FILTER (WHERE account = 'shares') AS shares, "
     "sum(amount) FILTER (WHERE account = 'shares_held') AS held FROM journal "
     "WHERE account IN ('shares', 'shares_held') GROUP BY user_id, asset) j USING (user_id, symbol) "
     "WHERE (coalesce(p.qty, 0) <> coalesce(j.shares, 0) OR coalesce(p.qty_held, 0) <> coalesce(j.held, 0)) "
     f"AND {_mine('user_id')}",
     "position differs from its journal"),
    ("SELECT a.user_id, a.cash_held, coalesce(o.held, 0) AS open_holds FROM accounts a LEFT JOIN "
     "(SELECT user_id, sum(held) AS held FROM orders WHERE side = 'buy' AND status IN "
     "('pending_trigger', 'accepted', 'routed', 'partially_filled') GROUP BY user_id) o USING (user_id) "
     f"WHERE a.cash_held <> coalesce(o.held, 0) AND {_mine('a.user_id')}",
     "cash held differs from open buy orders' holds"),
    ("SELECT p.user_id, p.symbol, p.qty_held, coalesce(o.held, 0) AS open_holds FROM positions p LEFT JOIN "
     "(SELECT user_id, symbol, sum(held) AS held FROM orders WHERE side = 'sell' AND status IN "
     "('pending_trigger', 'accepted', 'routed', 'partially_filled') GROUP BY user_id, symbol) o "
     "USING (user_id, symbol) "
     f"WHERE p.qty_held <> coalesce(o.held, 0) AND {_mine('p.user_id')}",
     "shares held differ from open sell orders' holds"),
    ("SELECT order_id, status, held FROM orders WHERE status IN ('filled', 'cancelled', 'rejected', 'expired', "
     "'replaced') AND held <> 0 "
     f"AND {_mine('user_id')}",
     "a closed order still holds something"),
    ("SELECT o.order_id, o.filled_qty, coalesce(e.qty, 0) AS executed FROM orders o LEFT JOIN "
     "(SELECT order_id, sum(qty) AS qty FROM executions GROUP BY order_id) e USING (order_id) "
     f"WHERE o.filled_qty <> coalesce(e.qty, 0) AND {_mine('o.user_id')}",
     "filled quantity differs from its executions"),
    (f"SELECT user_id, cash FROM accounts WHERE (cash < 0 OR cash_held < 0) AND {_mine('user_id')}",
     "negative cash"),
    # A counterparty's fault that got in: a buy filled above its limit (or the price its cash was held at), a sell
    # below its limit. Read twice: from the executions, and from the money the journal moved for the order's
    # fills (the market's side of a fill is exactly qty * price), so neither record can hide a breach.
    ("SELECT o.order_id, o.side, o.limit_price, o.reserve_price, e.exec_id, e.price FROM executions e "
     "JOIN orders o USING (order_id) WHERE ((o.side = 'buy' AND (e.price > o.limit_price OR "
     "(o.reserve_price > 0 AND e.price > o.reserve_price))) OR (o.side = 'sell' AND e.price < o.limit_price)) "
     f"AND {_mine('o.user_id')}",
     "fill beyond its order's limit price"),
    ("SELECT o.order_id, o.side, o.filled_qty, o.limit_price, o.reserve_price, j.paid FROM orders o JOIN "
     "(SELECT order_id, abs(sum(amount)) AS paid FROM journal WHERE kind = 'fill' AND user_id <> '' "
     "AND asset = 'USD' AND account IN ('cash', 'cash_held') GROUP BY order_id) j USING (order_id) "
     "WHERE ((o.side = 'buy' AND (j.paid > ceil(o.filled_qty::numeric * o.limit_price / 1000000) OR "
     "(o.reserve_price > 0 AND j.paid > ceil(o.filled_qty::numeric * o.reserve_price / 1000000)))) "
     "OR (o.side = 'sell' AND j.paid < floor(o.filled_qty::numeric * o.limit_price / 1000000))) "
     f"AND {_mine('o.user_id')}",
     "fill money beyond its order's limit price"),
    ("SELECT o.order_id, o.symbol, o.side, e.exec_id, e.symbol AS exec_symbol, e.side AS exec_side "
     "FROM executions e JOIN orders o USING (order_id) "
     f"WHERE (e.symbol <> o.symbol OR e.side <> o.side) AND {_mine('o.user_id')}",
     "execution for another symbol or side than its order"),
    # The CHECK constraints forbid the next two; checked anyway, as the oracle must not trust what it audits
    # (a migration or a hand-run script can drop a constraint).
    ("SELECT user_id, symbol, qty, qty_held FROM positions WHERE (qty < 0 OR qty_held < 0 OR cost < 0) "
     f"AND {_mine('user_id')}",
     "negative shares"),
    (f"SELECT order_id, qty, filled_qty, held FROM orders WHERE (filled_qty > qty OR filled_qty < 0 OR held < 0) "
     f"AND {_mine('user_id')}",
     "an order filled beyond its quantity or holding less than nothing"),
    # an order's status says what its fills say: filled means all of it, working orders have filled part of it
    # at most, and a rejection happened before any fill (reject() turns a partly filled order into cancelled)
    ("SELECT order_id, status, qty, filled_qty FROM orders WHERE NOT CASE status "
     "WHEN 'filled' THEN filled_qty = qty WHEN 'partially_filled' THEN filled_qty > 0 AND filled_qty < qty "
     "WHEN 'pending_trigger' THEN filled_qty = 0 "
     "WHEN 'accepted' THEN filled_qty = 0 WHEN 'routed' THEN filled_qty = 0 WHEN 'rejected' THEN filled_qty = 0 "
     "WHEN 'cancelled' THEN filled_qty < qty WHEN 'expired' THEN filled_qty < qty "
     "WHEN 'replaced' THEN filled_qty < qty "
     f"ELSE false END AND {_mine('user_id')}",
     "an order's status disagrees with its fills"),
    # a stop is never sent or filled before its trigger, and a triggered one says when and at what price
    ("SELECT order_id, status, triggered_at, trigger_price, sent_at FROM orders "
     "WHERE type IN ('stop', 'stop_limit', 'trailing_stop') AND CASE WHEN status = 'pending_trigger' "
     "THEN triggered_at IS NOT NULL OR sent_at IS NOT NULL "
     "ELSE (triggered_at IS NULL) <> (trigger_price IS NULL) OR (triggered_at IS NULL AND "
     f"(sent_at IS NOT NULL OR filled_qty > 0)) END AND {_mine('user_id')}",
     "a stop routed or filled without its trigger"),
    # the rounding rule, per order: a buyer pays the exact cost rounded up, a seller receives it rounded down
    ("SELECT o.order_id, o.filled_notional, coalesce(e.notional, 0) AS executed FROM orders o LEFT JOIN "
     "(SELECT order_id, sum(qty::numeric * price) AS notional FROM executions GROUP BY order_id) e "
     "USING (order_id) WHERE o.filled_notional <> CASE o.side WHEN 'buy' THEN ceil(coalesce(e.notional, 0) / "
     f"1000000) ELSE floor(coalesce(e.notional, 0) / 1000000) END AND {_mine('o.user_id')}",
     "filled notional differs from its executions"),
    # No cash or shares created in a fill: each execution's journal moves exactly its quantity of shares to or
    # from the order's owner, whole shares at its price with the market (the rest with the house's fractional
    # account), and the owner's cash within a unit of the exact quantity times price (the per-order rounding).
    # A sale's `unsettled` line is a memo (against the house's `clearing`), not cash: counting it would count the
    # proceeds twice.
    ("SELECT e.order_id, e.exec_id, e.qty, e.price, j.shares, j.cash, j.market_shares, j.market_cash "
     "FROM executions e JOIN orders o USING (order_id) LEFT JOIN (SELECT order_id, exec_id, "
     "sum(amount) FILTER (WHERE user_id <> '' AND account IN ('shares', 'shares_held')) AS shares, "
     "sum(amount) FILTER (WHERE user_id <> '' AND asset = 'USD' AND account IN ('cash', 'cash_held')) AS cash, "
     "sum(amount) FILTER (WHERE user_id = '' AND account = 'market' AND asset <> 'USD') AS market_shares, "
     "sum(amount) FILTER (WHERE user_id = '' AND account = 'market' AND asset = 'USD') AS market_cash "
     "FROM journal WHERE kind = 'fill' GROUP BY order_id, exec_id) j USING (order_id, exec_id) "
     "WHERE (j.shares IS DISTINCT FROM CASE o.side WHEN 'buy' THEN e.qty ELSE -e.qty END "
     "OR abs(coalesce(j.cash, 0)) < ceil(e.qty::numeric * e.price / 1000000) - 1 "
     "OR abs(coalesce(j.cash, 0)) > floor(e.qty::numeric * e.price / 1000000) + 1 "
     "OR coalesce(j.market_shares, 0) <> CASE o.side WHEN 'buy' THEN -ceil(e.qty / 1000000.0) * 1000000 "
     "ELSE floor(e.qty / 1000000.0) * 1000000 END "
     "OR coalesce(j.market_cash, 0) <> CASE o.side WHEN 'buy' THEN ceil(e.qty / 1000000.0) * e.price "
     "ELSE -floor(e.qty / 1000000.0) * e.price END) "
     f"AND {_mine('o.user_id')}",
     "a fill's journal differs from its execution"),
    # Money enters and leaves only through deposits and withdrawals, trades only with the market, fees only
    # to the fee account: a counterparty account in any other kind of transaction creates or destroys value,
    # as does a user's account under the counterparty's id or the other way round.
    # (migration 015) a split moves shares and cash-in-lieu against the issuer, and scales the house's fractions
    # (migration 012) a sale's unsettled proceeds are a memo pair, the user's `unsettled` against the house's
    # `clearing`, written by its fill and reversed by its settlement
    ("SELECT id, txn_id, kind, user_id, account, asset, amount FROM journal WHERE "
     "(CASE WHEN user_id = '' THEN NOT (account = 'external' AND kind IN ('deposit', 'withdrawal') "
     "OR account IN ('market', 'fractional') AND kind = 'fill' OR account = 'fees' AND kind = 'fee' "
     "OR account = 'clearing' AND kind IN ('fill', 'settlement') "
     "OR account IN ('issuer', 'fractional') AND kind = 'split') "
     "ELSE account NOT IN ('cash', 'cash_held', 'shares', 'shares_held') "
     "AND NOT (account = 'unsettled' AND kind IN ('fill', 'settlement')) END) "
     f"AND {_in_scope()}",
     "a journal line moves value where its kind may not"),
    # holds and releases move one user's value between their own accounts, nothing else
    ("SELECT txn_id, kind, count(DISTINCT user_id) AS users FROM journal WHERE kind IN ('hold', 'release') "
     f"AND {_in_scope()} GROUP BY txn_id, kind HAVING count(DISTINCT user_id) <> 1",
     "a hold or release touches another user's accounts"),
    *settlement_invariants(_mine, _in_scope),
    *split_invariants(_mine, _in_scope),
]
