-- Corporate actions (issue 15, item 6): stock splits, forward (N-for-M, N > M) and reverse (N < M), applied by
-- the operator's `tickfan split` (order_api/splits.py is the arithmetic, order_api/split_db.py the transaction).
--
-- A split is one transaction per shard, journal kind 'split': each holder's shares of the symbol move from Q to
-- floor(Q * N / M) millionths against the house's new `issuer` account (the shares the issuer creates or retires),
-- and the sub-millionth remainder of a non-integral result is paid as cash-in-lieu at the split-adjusted price,
-- also from `issuer`. The house's own `fractional` shares of the symbol are scaled the same way (no cash).
-- Open orders on the symbol are cancelled, not rescaled (README "Stock splits"). Cost basis is not touched.
--
-- Each CHECK list restates every value the earlier migrations allow (012's note): kinds up to 'settlement' and
-- accounts up to 'clearing' (010's 'fractional' included), plus this migration's 'split' and 'issuer'.

ALTER TABLE journal DROP CONSTRAINT journal_kind_check;
ALTER TABLE journal ADD CONSTRAINT journal_kind_check
    CHECK (kind IN ('deposit', 'withdrawal', 'hold', 'release', 'fill', 'fee', 'settlement', 'split'));
ALTER TABLE journal DROP CONSTRAINT journal_account_check;
ALTER TABLE journal ADD CONSTRAINT journal_account_check
    CHECK (account IN ('cash', 'cash_held', 'shares', 'shares_held', 'unsettled', 'external', 'market', 'fees',
                       'fractional', 'clearing', 'issuer'));

-- One row per split applied on this shard: its id makes the command idempotent (applied once per shard; the same
-- id with other terms is refused).
CREATE TABLE splits (
    split_id    TEXT PRIMARY KEY,
    symbol      TEXT NOT NULL,
    ratio_new   BIGINT NOT NULL CHECK (ratio_new > 0),     -- N: shares after ...
    ratio_old   BIGINT NOT NULL CHECK (ratio_old > 0),     -- M: ... for this many before (reduced, N <> M)
    price       BIGINT NOT NULL CHECK (price >= 0),        -- the pre-split reference price (cash-in-lieu), 0: none
    effective   DATE NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ratio_new <> ratio_old)
);

-- What the split did to each holder (user_id '' is the house's fractional account): read by the invariants, which
-- check every holder's new quantity and cash-in-lieu against the rule and against the journal.
CREATE TABLE split_holders (
    split_id     TEXT NOT NULL REFERENCES splits,
    user_id      TEXT NOT NULL,
    txn_id       UUID,                                   -- its journal transaction (NULL: nothing moved)
    old_qty      BIGINT NOT NULL CHECK (old_qty >= 0),
    new_qty      BIGINT NOT NULL CHECK (new_qty >= 0),
    cash_in_lieu BIGINT NOT NULL CHECK (cash_in_lieu >= 0),
    PRIMARY KEY (split_id, user_id)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickfan_app') THEN
        GRANT SELECT, INSERT ON splits, split_holders TO tickfan_app;
    END IF;
END
$$;
