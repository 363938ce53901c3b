-- The live account: settlement of sales (T+1) in the journal, and one versioned account update per change.
--
-- Settlement. A sale's proceeds are credited to `cash` by its fill as before (so buying power, which is `cash`,
-- includes them, as a broker's cash account does), and the same journal transaction gains two memo lines: the
-- user's `unsettled` account is credited with the proceeds and the house's `clearing` account (the clearing
-- house owes the broker that much) debited. The settlement job (order_api/settlement.py), once the settlement
-- date of the trade has come, posts a `settlement` transaction reversing the memo: `unsettled` -X, `clearing`
-- +X. So a user's unsettled cash is the sum of their `unsettled` lines, read from the journal like every balance,
-- and each settlement is a journal entry (an activity). Neither place_orders nor record_execution changes: the
-- memo lines are written by a trigger on the sale's own `cash` line.
--
-- Account updates. Every transaction that writes a journal line of a user (deposit, hold, release, fill, fee,
-- settlement) publishes that user's account as it stands at commit, once per transaction, with a per-user
-- version one higher than the last: a deferred trigger writes it to the outbox (topic 'account', JSON of the
-- raw balances; the relay encodes the AccountUpdate). The version is taken under the account row lock every
-- money transaction holds, so versions follow commit order and the outbox row is in the same transaction.

ALTER TABLE journal DROP CONSTRAINT journal_kind_check;
ALTER TABLE journal ADD CONSTRAINT journal_kind_check
    CHECK (kind IN ('deposit', 'withdrawal', 'hold', 'release', 'fill', 'fee', 'settlement'));
-- Each list restates every value earlier migrations allow (005's 'session' topic; 010's house 'fractional'
-- account, written by the fractional slice, allowed here whichever of the two is applied first).
ALTER TABLE journal DROP CONSTRAINT journal_account_check;
ALTER TABLE journal ADD CONSTRAINT journal_account_check
    CHECK (account IN ('cash', 'cash_held', 'shares', 'shares_held', 'unsettled', 'external', 'market', 'fees',
                       'fractional', 'clearing'));
ALTER TABLE outbox DROP CONSTRAINT outbox_topic_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_topic_check
    CHECK (topic IN ('execution', 'order_update', 'session', 'account'));

-- One row per sale execution: its proceeds, the exchange date it traded on, and when it settled (NULL: not yet).
CREATE TABLE settlements (
    memo_id     BIGINT PRIMARY KEY,          -- the journal id of the sale's `unsettled` memo line
    user_id     TEXT NOT NULL,
    order_id    UUID,
    exec_id     TEXT,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    trade_date  DATE NOT NULL,               -- America/New_York date of the fill
    settled_at  TIMESTAMPTZ
);
CREATE INDEX settlements_pending ON settlements (trade_date, user_id) WHERE settled_at IS NULL;
CREATE INDEX settlements_user_pending ON settlements (user_id) WHERE settled_at IS NULL;

-- The sale's own cash line (a positive `cash` line of a fill whose order is a sell) brings its memo lines.
CREATE FUNCTION note_unsettled_sale() RETURNS TRIGGER AS $$
DECLARE
    memo BIGINT;
BEGIN
    PERFORM 1 FROM orders WHERE order_id = NEW.order_id AND side = 'sell';
    IF NOT FOUND THEN
        RETURN NULL;  -- a buy's returned hold difference, not proceeds
    END IF;
    INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id, exec_id)
    VALUES (NEW.txn_id, 'fill', NEW.user_id, 'unsettled', NEW.asset, NEW.amount, NEW.order_id, NEW.exec_id)
    RETURNING id INTO memo;
    INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id, exec_id)
    VALUES (NEW.txn_id, 'fill', '', 'clearing', NEW.asset, -NEW.amount, NEW.order_id, NEW.exec_id);
    INSERT INTO settlements (memo_id, user_id, order_id, exec_id, amount, trade_date)
    VALUES (memo, NEW.user_id, NEW.order_id, NEW.exec_id, NEW.amount,
            (NEW.created_at AT TIME ZONE 'America/New_York')::date);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER journal_sale_unsettled AFTER INSERT ON journal FOR EACH ROW
    WHEN (NEW.kind = 'fill' AND NEW.account = 'cash' AND NEW.user_id <> '' AND NEW.amount > 0
          AND NEW.asset = 'USD')
    EXECUTE FUNCTION note_unsettled_sale();

-- A user's raw balances as JSON (money and quantities as integers in the ledger's units): the one definition
-- read by the account updates and by GET /v1/account (order_api/account.py derives buying power and the rest).
CREATE FUNCTION account_state(p_user TEXT) RETURNS JSONB AS $$
    SELECT jsonb_build_object(
        'cash', a.cash, 'cash_held', a.cash_held,
        'unsettled', (SELECT coalesce(sum(amount), 0) FROM settlements
                      WHERE user_id = p_user AND settled_at IS NULL),
        'positions', (SELECT coalesce(jsonb_agg(jsonb_build_object('symbol', p.symbol, 'qty', p.qty,
                                                                   'qty_held', p.qty_held, 'cost', p.cost)
                                                ORDER BY p.symbol), '[]'::jsonb)
                      FROM positions p WHERE p.user_id = p_user AND p.qty + p.qty_held > 0))
    FROM accounts a WHERE a.user_id = p_user
$$ LANGUAGE sql STABLE;

-- The per-user version of the account updates, and the transaction that last took one (once per transaction).
CREATE TABLE account_versions (
    user_id  TEXT PRIMARY KEY,
    version  BIGINT NOT NULL,
    txid     BIGINT NOT NULL
);

CREATE FUNCTION announce_account() RETURNS TRIGGER AS $$
DECLARE
    v BIGINT;
    t BIGINT;
    state JSONB;
BEGIN
    -- no race: every transaction writing a user's journal lines holds their account row lock until it ends
    SELECT version, txid INTO v, t FROM account_versions WHERE user_id = NEW.user_id;
    IF NOT FOUND THEN
        v := 1;
        INSERT INTO account_versions (user_id, version, txid) VALUES (NEW.user_id, v, txid_current());
    ELSIF t = txid_current() THEN
        RETURN NULL;  -- this transaction announced the user already (its other lines fire this too)
    ELSE
        v := v + 1;
        UPDATE account_versions SET version = v, txid = txid_current() WHERE user_id = NEW.user_id;
    END IF;
    state := account_state(NEW.user_id);
    IF state IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox (user_id, topic, payload)
    VALUES (NEW.user_id, 'account', convert_to((state || jsonb_build_object(
        'user_id', NEW.user_id, 'version', v,
        'event_time_ns', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000))::text, 'UTF8'));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- Deferred to the commit: it sees the transaction's final balances, whatever order its lines were written in.
CREATE CONSTRAINT TRIGGER journal_account_changed AFTER INSERT ON journal DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.user_id <> '') EXECUTE FUNCTION announce_account();

-- The services' role (migration 007) reads and writes the new tables and runs the new functions.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tickfan_app') THEN
        GRANT SELECT, INSERT, UPDATE ON settlements, account_versions TO tickfan_app;
        GRANT EXECUTE ON FUNCTION note_unsettled_sale(), account_state(TEXT), announce_account() TO tickfan_app;
    END IF;
END
$$;
