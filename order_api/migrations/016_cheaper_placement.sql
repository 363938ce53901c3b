-- Cheaper placements (issue 16 item 4; benchmarks/RESULTS.md "Order acknowledgement (item 4)"). Nothing a client or
-- the relay sees changes: the same rows, the same account updates with the same versions and payloads.
--
-- perf on the backends running place_orders (pgbench, one order a call) put 27% of their CPU in migration 012's
-- deferred account trigger, most of it in account_state(): a LANGUAGE sql function that cannot be inlined (it reads
-- a table) is parsed and planned again on every call. As plpgsql its plan is kept by the session.

CREATE OR REPLACE FUNCTION account_state(p_user TEXT) RETURNS JSONB AS $$
BEGIN
    RETURN (SELECT jsonb_build_object(
        'cash', a.cash, 'cash_held', a.cash_held,
        'unsettled', (SELECT coalesce(sum(amount), 0) FROM settlements
                      WHERE user_id = p_user AND settled_at IS NULL),
        'positions', (SELECT coalesce(jsonb_agg(jsonb_build_object('symbol', p.symbol, 'qty', p.qty,
                                                                   'qty_held', p.qty_held, 'cost', p.cost)
                                                ORDER BY p.symbol), '[]'::jsonb)
                      FROM positions p WHERE p.user_id = p_user AND p.qty + p.qty_held > 0))
    FROM accounts a WHERE a.user_id = p_user);
END
$$ LANGUAGE plpgsql STABLE;

-- The same announcement in fewer statements: the version taken by one UPDATE in the usual case (the user announced
-- before, by another transaction), the outbox row written by one INSERT .. SELECT (none when the user has no account
-- row, as before: the version is taken all the same).
CREATE OR REPLACE FUNCTION announce_account() RETURNS TRIGGER AS $$
DECLARE
    v BIGINT;
BEGIN
    -- no race: every transaction writing a user's journal lines holds their account row lock until it ends
    UPDATE account_versions SET version = version + 1, txid = txid_current()
    WHERE user_id = NEW.user_id AND txid <> txid_current()
    RETURNING version INTO v;
    IF NOT FOUND THEN
        PERFORM 1 FROM account_versions WHERE user_id = NEW.user_id;
        IF FOUND THEN
            RETURN NULL;  -- this transaction announced the user already (its other lines fire this too)
        END IF;
        v := 1;
        INSERT INTO account_versions (user_id, version, txid) VALUES (NEW.user_id, v, txid_current());
    END IF;
    INSERT INTO outbox (user_id, topic, payload)
    SELECT NEW.user_id, 'account', convert_to((s.state || jsonb_build_object(
        'user_id', NEW.user_id, 'version', v,
        'event_time_ns', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000))::text, 'UTF8')
    FROM account_state(NEW.user_id) AS s(state)
    WHERE s.state IS NOT NULL;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- Fired by one line of a hold or a release, not both: such a transaction moves one user's value between their own
-- accounts (an invariant, order_api/invariants.py) and balances, so its negative line names the same user as its
-- positive one, and the user is announced once per transaction either way. A placement fires it once, not twice.
DROP TRIGGER journal_account_changed ON journal;
CREATE CONSTRAINT TRIGGER journal_account_changed AFTER INSERT ON journal DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.user_id <> '' AND NOT (NEW.kind IN ('hold', 'release') AND NEW.amount > 0))
    EXECUTE FUNCTION announce_account();

-- place_orders: migration 013's, in fewer and plainer statements. Its hold lines were written by an INSERT .. SELECT
-- over generate_series, whose generic plan guesses 1,000 rows: PostgreSQL's plan cache kept planning it afresh for
-- every order (planning was 11% of the backends' CPU); two VALUES rows plan once. The order update and the execution
-- work go to the outbox in one INSERT (each statement re-reads the table's CHECK constraints: 13% of the CPU), in the
-- same order as before (the update first: the outbox is read in id order).
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
    txn UUID;
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
        txn := gen_random_uuid();
        INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
        VALUES (txn, 'hold', u, p_accounts[2 * i - 1], p_assets[2 * i - 1], p_amounts[2 * i - 1], p_order_ids[i]),
               (txn, 'hold', u, p_accounts[2 * i], p_assets[2 * i], p_amounts[2 * i], p_order_ids[i]);
        IF p_accounts[2 * i - 1] = 'cash' AND p_accounts[2 * i] = 'cash_held' THEN
            UPDATE accounts SET cash = cash + p_amounts[2 * i - 1], cash_held = cash_held + p_amounts[2 * i]
            WHERE user_id = u;
        ELSIF p_accounts[2 * i - 1] = 'shares' AND p_accounts[2 * i] = 'shares_held' THEN
            UPDATE positions SET qty = qty + p_amounts[2 * i - 1], qty_held = qty_held + p_amounts[2 * i]
            WHERE user_id = u AND symbol = p_symbols[i];
        ELSE
            RAISE EXCEPTION 'place_orders: order % does not carry a hold pair', i;
        END IF;
        IF resting THEN  -- a stop is routed by its trigger (order_api/stop_watcher.py), never at placement
            INSERT INTO outbox (user_id, topic, payload) VALUES (u, 'order_update', p_updates[i]);
        ELSE
            INSERT INTO outbox (user_id, topic, payload)
            VALUES (u, 'order_update', p_updates[i]), (u, 'execution', p_works[i]);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$ LANGUAGE plpgsql;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO tickfan_app;
