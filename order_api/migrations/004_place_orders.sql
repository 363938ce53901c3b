-- Placements in batches: the orders that reach one shard while its previous call is still running are placed
-- by one call, in one transaction, in the order given. One round trip, one plan, one commit (one WAL flush)
-- for the whole batch instead of one per order: on the 2-core machine a placement cost PostgreSQL about as
-- much CPU as all of the API's Python, most of it per transaction (benchmarks/RESULTS.md). A single order is
-- a batch of one; place_order and post_entries (migration 002) are replaced and dropped below.
--
-- No NOTIFY: a NOTIFY takes a database-wide lock at commit and holds it through the WAL flush, so every
-- placement's commit waited for the one before it (about 30% fewer placements/s on the 2-core machine). The
-- outbox relay is woken in-process by the ledger that committed and polls for other processes' rows.
--
-- Each order is checked as place_order checked it, but a refusal is answered in its own result row (code, and
-- the amount available) instead of raised, so one refused order never aborts the others.
-- Every account in the batch is locked first, in user_id order, so two batches sharing users cannot deadlock;
-- every other transaction locks one account before anything else, so none can deadlock with a batch either.
-- p_accounts/p_assets/p_amounts carry exactly two hold entries per order: order i's are 2i-1 and 2i.
CREATE FUNCTION place_orders(p_order_ids UUID[], p_users TEXT[], p_keys TEXT[], p_fingerprints TEXT[],
                             p_symbols TEXT[], p_sides TEXT[], p_types TEXT[], p_tifs TEXT[], p_qtys BIGINT[],
                             p_limits BIGINT[], p_reserves BIGINT[], p_helds BIGINT[], p_accounts TEXT[],
                             p_assets TEXT[], p_amounts BIGINT[], p_updates BYTEA[], p_works BYTEA[])
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
                            limit_price, reserve_price, held, status)
        VALUES (p_order_ids[i], u, p_keys[i], p_fingerprints[i], p_symbols[i], p_sides[i], p_types[i], p_tifs[i],
                p_qtys[i], p_limits[i], p_reserves[i], p_helds[i], 'accepted')
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

DROP FUNCTION place_order(UUID, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, BIGINT, BIGINT, BIGINT, TEXT[], TEXT[],
                          BIGINT[], BYTEA, BYTEA);
DROP FUNCTION post_entries(TEXT, TEXT[], TEXT[], TEXT[], BIGINT[], UUID, TEXT);
