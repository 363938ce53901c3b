-- place_order without its NOTIFY. A NOTIFY takes a database-wide lock at commit and holds it through the
-- WAL flush, so every placement's commit waited for the one before it: group commit was lost and PostgreSQL
-- placed about 30% fewer orders per second on the 2-core machine (benchmarks/RESULTS.md). The outbox relay is
-- now woken in-process by the ledger that committed, and polls briefly for changes made by other processes.

CREATE OR REPLACE FUNCTION place_order(p_order_id UUID, p_user TEXT, p_key TEXT, p_fingerprint TEXT, p_symbol TEXT,
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
    RETURN NEXT placed;
END
$$ LANGUAGE plpgsql;
