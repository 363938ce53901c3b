-- The placement hot path as one statement (one round trip, its own transaction): the Python side has
-- already validated the order and built its balanced journal entries; these functions lock, check, apply.

-- Append one balanced journal transaction and move the cached balances by the same amounts.
CREATE FUNCTION post_entries(p_kind TEXT, p_users TEXT[], p_accounts TEXT[], p_assets TEXT[], p_amounts BIGINT[],
                             p_order UUID, p_exec TEXT) RETURNS VOID AS $$
DECLARE
    i INT;
BEGIN
    INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id, exec_id)
    SELECT gen_random_uuid_txn.id, p_kind, u, a, s, m, p_order, p_exec
    FROM (SELECT gen_random_uuid() AS id) AS gen_random_uuid_txn,
         unnest(p_users, p_accounts, p_assets, p_amounts) AS t(u, a, s, m);
    FOR i IN 1 .. coalesce(array_length(p_users, 1), 0) LOOP
        CONTINUE WHEN p_users[i] = '';
        IF p_accounts[i] = 'cash' THEN
            UPDATE accounts SET cash = cash + p_amounts[i] WHERE user_id = p_users[i];
        ELSIF p_accounts[i] = 'cash_held' THEN
            UPDATE accounts SET cash_held = cash_held + p_amounts[i] WHERE user_id = p_users[i];
        ELSIF p_accounts[i] = 'shares' THEN
            UPDATE positions SET qty = qty + p_amounts[i] WHERE user_id = p_users[i] AND symbol = p_assets[i];
            IF NOT FOUND THEN
                INSERT INTO positions (user_id, symbol, qty) VALUES (p_users[i], p_assets[i], p_amounts[i]);
            END IF;
        ELSE
            UPDATE positions SET qty_held = qty_held + p_amounts[i] WHERE user_id = p_users[i] AND symbol = p_assets[i];
            IF NOT FOUND THEN
                INSERT INTO positions (user_id, symbol, qty_held) VALUES (p_users[i], p_assets[i], p_amounts[i]);
            END IF;
        END IF;
    END LOOP;
END
$$ LANGUAGE plpgsql;

-- Place an order: lock the user's account row, answer a repeated idempotency key with the first order (or
-- refuse a different body), check buying power or shares, then record order, hold, journal and outbox.
-- Refusals raise with the machine-readable code as the message and the amount available as the detail.
CREATE FUNCTION place_order(p_order_id UUID, p_user TEXT, p_key TEXT, p_fingerprint TEXT, p_symbol TEXT,
                            p_side TEXT, p_type TEXT, p_tif TEXT, p_qty BIGINT, p_limit BIGINT, p_reserve BIGINT,
                            p_held BIGINT, p_accounts TEXT[], p_assets TEXT[], p_amounts BIGINT[],
                            p_update BYTEA, p_work BYTEA) RETURNS SETOF orders AS $$
DECLARE
    have_account BOOLEAN;
    cash_now BIGINT;
    shares_now BIGINT;
    existing orders;
    placed orders;
BEGIN
    SELECT cash INTO cash_now FROM accounts WHERE user_id = p_user FOR UPDATE;
    have_account := FOUND;
    SELECT * INTO existing FROM orders WHERE user_id = p_user AND idempotency_key = p_key;
    IF FOUND THEN
        IF existing.fingerprint <> p_fingerprint THEN
            RAISE EXCEPTION 'idempotency_conflict';
        END IF;
        RETURN NEXT existing;
        RETURN;
    END IF;
    IF p_side = 'buy' THEN
        IF NOT have_account OR cash_now < p_held THEN
            RAISE EXCEPTION 'insufficient_funds' USING DETAIL = coalesce(cash_now, 0)::TEXT;
        END IF;
    ELSE
        SELECT qty INTO shares_now FROM positions WHERE user_id = p_user AND symbol = p_symbol FOR UPDATE;
        IF NOT have_account OR NOT FOUND OR shares_now < p_qty THEN
            RAISE EXCEPTION 'insufficient_shares' USING DETAIL = coalesce(shares_now, 0)::TEXT;
        END IF;
    END IF;
    INSERT INTO orders (order_id, user_id, idempotency_key, fingerprint, symbol, side, type, tif, qty, limit_price,
                        reserve_price, held, status)
    VALUES (p_order_id, p_user, p_key, p_fingerprint, p_symbol, p_side, p_type, p_tif, p_qty, p_limit, p_reserve,
            p_held, 'accepted')
    RETURNING * INTO placed;
    PERFORM post_entries('hold', array_fill(p_user, ARRAY[array_length(p_accounts, 1)]), p_accounts, p_assets,
                         p_amounts, p_order_id, NULL);
    INSERT INTO outbox (user_id, topic, payload) VALUES (p_user, 'order_update', p_update), (p_user, 'execution', p_work);
    PERFORM pg_notify('tickfan_outbox', '');
    RETURN NEXT placed;
END
$$ LANGUAGE plpgsql;
