-- Fractional and notional orders (issue 15): quantities become millionths of a share (vocab.quantities.QTY_SCALE).
-- Every stored quantity is multiplied by 1,000,000, exactly: positions, holds of sell orders, orders, executions
-- and the journal's share lines. Money (1/10,000 of a dollar) is unchanged, and so is every order's
-- filled_notional (the money its fills moved: whole shares times price was already exact).
--
-- record_execution and the check_execution trigger (migration 006) compare quantities only with quantities of the
-- same unit, so they are unchanged. place_orders gains the orders' notional (p_notionals) and is redefined whole.

-- the journal is append-only (its rules make UPDATE do nothing): lifted for this one conversion, then restored
DROP RULE journal_no_update ON journal;
UPDATE journal SET amount = amount * 1000000 WHERE asset <> 'USD';
CREATE RULE journal_no_update AS ON UPDATE TO journal WHERE true DO INSTEAD NOTHING;

UPDATE positions SET qty = qty * 1000000, qty_held = qty_held * 1000000;
UPDATE executions SET qty = qty * 1000000;
UPDATE orders SET qty = qty * 1000000, filled_qty = filled_qty * 1000000,
                  held = CASE WHEN side = 'sell' THEN held * 1000000 ELSE held END;

-- the broker's house account of residual fractions of shares (order_api/ledger.py: buy_fill, sell_fill)
ALTER TABLE journal DROP CONSTRAINT journal_account_check;
ALTER TABLE journal ADD CONSTRAINT journal_account_check
    CHECK (account IN ('cash', 'cash_held', 'shares', 'shares_held', 'external', 'market', 'fees', 'fractional'));

-- notional: dollars to spend (market buys), NULL for an order by quantity.
-- cash_carry: the per-order rounding carry (ledger.buy_cost / sell_proceeds), in money units / 1,000,000.
ALTER TABLE orders ADD COLUMN notional BIGINT CHECK (notional > 0),
                   ADD COLUMN cash_carry BIGINT NOT NULL DEFAULT 0 CHECK (cash_carry >= 0 AND cash_carry < 1000000);

DROP FUNCTION place_orders(UUID[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], BIGINT[], BIGINT[],
                           BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BYTEA[], BYTEA[]);

-- migration 004's place_orders, with p_notionals stored on each order (NULL: an order by quantity)
CREATE OR REPLACE FUNCTION place_orders(p_order_ids UUID[], p_users TEXT[], p_keys TEXT[], p_fingerprints TEXT[],
                             p_symbols TEXT[], p_sides TEXT[], p_types TEXT[], p_tifs TEXT[], p_qtys BIGINT[],
                             p_limits BIGINT[], p_reserves BIGINT[], p_helds BIGINT[], p_accounts TEXT[],
                             p_assets TEXT[], p_amounts BIGINT[], p_updates BYTEA[], p_works BYTEA[],
                             p_notionals BIGINT[])
    RETURNS TABLE (idx INT, code TEXT, have BIGINT, placed orders) AS $$
DECLARE
    i INT;
    u TEXT;
    cash_now BIGINT;
    shares_now BIGINT;
    existing orders;
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
        INSERT INTO orders (order_id, user_id, idempotency_key, fingerprint, symbol, side, type, tif, qty,
                            limit_price, reserve_price, held, status, notional)
        VALUES (p_order_ids[i], u, p_keys[i], p_fingerprints[i], p_symbols[i], p_sides[i], p_types[i], p_tifs[i],
                p_qtys[i], p_limits[i], p_reserves[i], p_helds[i], 'accepted', p_notionals[i])
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
        INSERT INTO outbox (user_id, topic, payload)
        VALUES (u, 'order_update', p_updates[i]), (u, 'execution', p_works[i]);
        RETURN NEXT;
    END LOOP;
END
$$ LANGUAGE plpgsql;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO tickfan_app;
