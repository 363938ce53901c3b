-- Stop, stop-limit and trailing-stop orders (issue 15; README "Stop, stop-limit and trailing-stop orders").
-- A stop rests un-routed as status 'pending_trigger' (no status CHECK exists: order_api/model.py's lifecycle table
-- is the rule) until the execution path's trigger watcher sees the books cross it; the trigger is one transaction
-- (status -> 'accepted', trigger price and time, the routing work in the outbox), so it happens once.
--
-- Redefined: place_orders (migration 010's definition, with the stop terms as four trailing arrays; a stop type is
-- stored as 'pending_trigger' and gets no execution work at placement). record_execution and check_execution
-- (migration 006) are unchanged: they already refuse a fill of an order not accepted, routed or partially filled.

ALTER TABLE orders DROP CONSTRAINT orders_type_check;
ALTER TABLE orders ADD CONSTRAINT orders_type_check
    CHECK (type IN ('market', 'limit', 'stop', 'stop_limit', 'trailing_stop'));

-- stop_price: the stop now (4 implied decimals; a trailing stop's moves with its mark); trail_percent (percent,
-- e.g. 1.5) or trail_price (money) for a trailing stop; trail_mark: its high-water (sell) or low-water (buy) mark;
-- triggered_at and trigger_price (the ask or bid that crossed the stop) once triggered, NULL before.
ALTER TABLE orders ADD COLUMN stop_price BIGINT CHECK (stop_price >= 0),
                   ADD COLUMN trail_percent NUMERIC(8, 4) CHECK (trail_percent > 0 AND trail_percent < 100),
                   ADD COLUMN trail_price BIGINT CHECK (trail_price > 0),
                   ADD COLUMN trail_mark BIGINT CHECK (trail_mark >= 0),
                   ADD COLUMN triggered_at TIMESTAMPTZ,
                   ADD COLUMN trigger_price BIGINT CHECK (trigger_price > 0),
                   ADD CONSTRAINT orders_stop_terms CHECK (
                       (type IN ('stop', 'stop_limit') AND stop_price > 0 AND trail_percent IS NULL
                            AND trail_price IS NULL)
                       OR (type = 'trailing_stop' AND (trail_percent IS NULL) <> (trail_price IS NULL))
                       OR (type IN ('market', 'limit') AND stop_price IS NULL AND trail_percent IS NULL
                            AND trail_price IS NULL));

-- the watcher's scan: the resting stops only
CREATE INDEX orders_pending_trigger ON orders (created_at) WHERE status = 'pending_trigger';

DROP FUNCTION place_orders(UUID[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], BIGINT[], BIGINT[],
                           BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BYTEA[], BYTEA[], BIGINT[]);

-- migration 010's place_orders, with p_stops, p_trail_percents, p_trail_prices, p_trail_marks stored on each order
-- (NULL for the orders that are not stops)
CREATE OR REPLACE FUNCTION place_orders(p_order_ids UUID[], p_users TEXT[], p_keys TEXT[], p_fingerprints TEXT[],
                             p_symbols TEXT[], p_sides TEXT[], p_types TEXT[], p_tifs TEXT[], p_qtys BIGINT[],
                             p_limits BIGINT[], p_reserves BIGINT[], p_helds BIGINT[], p_accounts TEXT[],
                             p_assets TEXT[], p_amounts BIGINT[], p_updates BYTEA[], p_works BYTEA[],
                             p_notionals BIGINT[], p_stops BIGINT[], p_trail_percents NUMERIC[],
                             p_trail_prices BIGINT[], p_trail_marks BIGINT[])
    RETURNS TABLE (idx INT, code TEXT, have BIGINT, placed orders) AS $$
DECLARE
    i INT;
    u TEXT;
    cash_now BIGINT;
    shares_now BIGINT;
    existing orders;
    resting BOOLEAN;
BEGIN
    PERFORM 1 FROM accounts WHERE user_id = ANY (p_users) ORDER BY user_id FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_order_ids, 1), 0) LOOP
        idx := i;
        code := NULL;
        have := NULL;
        placed := NULL;
        u := p_users[i];
        SELECT * INTO existing FROM orders WHERE user_id = u AND idempotency_key = p_keys[i];
        IF FOUND THEN
            IF existing.fingerprint <> p_fingerprints[i] THEN
                code := 'idempotency_conflict';
            ELSE
                placed := existing;
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT cash INTO cash_now FROM accounts WHERE user_id = u;
        IF NOT FOUND THEN
            code := CASE WHEN p_sides[i] = 'buy' THEN 'insufficient_funds' ELSE 'insufficient_shares' END;
            have := 0;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_sides[i] = 'buy' THEN
            IF cash_now < p_helds[i] THEN
                code := 'insufficient_funds';
                have := cash_now;
                RETURN NEXT;
                CONTINUE;
            END IF;
        ELSE
            SELECT qty INTO shares_now FROM positions WHERE user_id = u AND symbol = p_symbols[i] FOR UPDATE;
            IF NOT FOUND OR shares_now < p_qtys[i] THEN
                code := 'insufficient_shares';
                have := coalesce(shares_now, 0);
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        resting := p_types[i] IN ('stop', 'stop_limit', 'trailing_stop');
        INSERT INTO orders (order_id, user_id, idempotency_key, fingerprint, symbol, side, type, tif, qty,
                            limit_price, reserve_price, held, status, notional, stop_price, trail_percent,
                            trail_price, trail_mark)
        VALUES (p_order_ids[i], u, p_keys[i], p_fingerprints[i], p_symbols[i], p_sides[i], p_types[i], p_tifs[i],
                p_qtys[i], p_limits[i], p_reserves[i], p_helds[i],
                CASE WHEN resting THEN 'pending_trigger' ELSE 'accepted' END, p_notionals[i], p_stops[i],
                p_trail_percents[i], p_trail_prices[i], p_trail_marks[i])
        RETURNING * INTO placed;
        -- the two hold entries, and the cached balances moved by the same amounts in one row update
        INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
        SELECT txn.id, 'hold', u, p_accounts[j], p_assets[j], p_amounts[j], p_order_ids[i]
        FROM (SELECT gen_random_uuid() AS id) AS txn, generate_series(2 * i - 1, 2 * i) AS j;
        IF p_accounts[2 * i - 1] = 'cash' AND p_accounts[2 * i] = 'cash_held' THEN
            UPDATE accounts SET cash = cash + p_amounts[2 * i - 1], cash_held = cash_held + p_amounts[2 * i]
            WHERE user_id = u;
        ELSIF p_accounts[2 * i - 1] = 'shares' AND p_accounts[2 * i] = 'shares_held' THEN
            UPDATE positions SET qty = qty + p_amounts[2 * i - 1], qty_held = qty_held + p_amounts[2 * i]
            WHERE user_id = u AND symbol = p_symbols[i];
        ELSE
            RAISE EXCEPTION 'place_orders: order % does not carry a hold pair', i;
        END IF;
        INSERT INTO outbox (user_id, topic, payload) VALUES (u, 'order_update', p_updates[i]);
        IF NOT resting THEN  -- a stop is routed by its trigger (order_api/stop_watcher.py), never at placement
            INSERT INTO outbox (user_id, topic, payload) VALUES (u, 'execution', p_works[i]);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$ LANGUAGE plpgsql;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO tickfan_app;
