-- tickfan ledger, one copy per shard (users are placed on a shard by CRC-32 of user_id).
-- Money and prices: BIGINT in 1/10,000 of a dollar (ITCH's fixed point), never floats.

CREATE TABLE accounts (
    user_id     TEXT PRIMARY KEY,
    cash        BIGINT NOT NULL DEFAULT 0 CHECK (cash >= 0),       -- available to trade or withdraw
    cash_held   BIGINT NOT NULL DEFAULT 0 CHECK (cash_held >= 0),  -- reserved by open buy orders
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE positions (
    user_id     TEXT NOT NULL REFERENCES accounts,
    symbol      TEXT NOT NULL,
    qty         BIGINT NOT NULL DEFAULT 0 CHECK (qty >= 0),        -- shares available to sell
    qty_held    BIGINT NOT NULL DEFAULT 0 CHECK (qty_held >= 0),   -- reserved by open sell orders
    cost        BIGINT NOT NULL DEFAULT 0 CHECK (cost >= 0),       -- average-cost basis of qty + qty_held
    PRIMARY KEY (user_id, symbol)
);

-- Append-only double-entry journal: every transaction's entries sum to zero per asset.
-- user_id '' holds the counterparty accounts: external (deposits), market (fills), fees.
CREATE TABLE journal (
    id          BIGSERIAL PRIMARY KEY,
    txn_id      UUID NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'hold', 'release', 'fill', 'fee')),
    user_id     TEXT NOT NULL,
    account     TEXT NOT NULL CHECK (account IN ('cash', 'cash_held', 'shares', 'shares_held',
                                                 'external', 'market', 'fees')),
    asset       TEXT NOT NULL,                                       -- 'USD' or a symbol
    amount      BIGINT NOT NULL CHECK (amount <> 0),
    order_id    UUID,
    exec_id     TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX journal_user ON journal (user_id, id);
CREATE INDEX journal_txn ON journal (txn_id);

CREATE RULE journal_no_update AS ON UPDATE TO journal DO INSTEAD NOTHING;
CREATE RULE journal_no_delete AS ON DELETE TO journal DO INSTEAD NOTHING;

CREATE TABLE orders (
    order_id        UUID PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES accounts,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    type            TEXT NOT NULL CHECK (type IN ('market', 'limit')),
    tif             TEXT NOT NULL CHECK (tif IN ('day', 'ioc')),
    qty             BIGINT NOT NULL CHECK (qty > 0),
    limit_price     BIGINT,
    reserve_price   BIGINT NOT NULL DEFAULT 0,      -- buys: per-share price held (and sent as the limit)
    held            BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),  -- still reserved: cash (buy) or shares (sell)
    status          TEXT NOT NULL,
    filled_qty      BIGINT NOT NULL DEFAULT 0 CHECK (filled_qty >= 0),
    filled_notional BIGINT NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    reason          TEXT NOT NULL DEFAULT '',
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key),
    CHECK (filled_qty <= qty)
);
CREATE INDEX orders_user ON orders (user_id, created_at DESC);
CREATE INDEX orders_open ON orders (updated_at) WHERE status IN ('accepted', 'routed', 'partially_filled');

-- Executions applied, by the market maker's ExecID: a report seen twice is applied once.
CREATE TABLE executions (
    order_id    UUID NOT NULL REFERENCES orders,
    exec_id     TEXT NOT NULL,
    qty         BIGINT NOT NULL CHECK (qty > 0),
    price       BIGINT NOT NULL CHECK (price > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, exec_id)
);

-- Transactional outbox: written in the same transaction as the change it announces.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    user_id      TEXT NOT NULL,
    topic        TEXT NOT NULL CHECK (topic IN ('execution', 'order_update')),
    payload      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
