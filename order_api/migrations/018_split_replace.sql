-- A split rescales the orders at the market maker too (README "Stock splits"), through the replace machinery of
-- migration 014 (FIX OrderCancelReplaceRequest, 35=G): order_api/split_db.py asks for the replace with the
-- post-split terms before it splits the positions, and splits the shard once the market maker has answered every
-- such replace (a refused one is cancelled instead, as before).
--
-- pending_split: the split whose replace of this order (at the market maker) waits for its answer.
-- split_refused: the split whose replace of this order the market maker refused (the split cancels it instead).
-- split_id: on the replacement the market maker confirmed (and on a replacement of that in turn), the split whose
-- terms it has. Until the split is applied it still holds what the old order held (pre-split money or shares):
-- the split's own transaction then sets its hold exactly, as for the orders it rescales in the ledger alone. A
-- split's replace holds nothing extra (pending_extra 0), so a refusal releases nothing.
--
-- Redefined: confirm_replace and reject_replace (migration 014's, unchanged but for a split's replace: the hold
-- kept whole and the replacement marked; a refusal recorded).

ALTER TABLE orders ADD COLUMN pending_split TEXT,
                   ADD COLUMN split_refused TEXT,
                   ADD COLUMN split_id TEXT;

CREATE OR REPLACE FUNCTION confirm_replace(p_old UUID, p_new UUID, p_left BIGINT) RETURNS SETOF orders AS $$
DECLARE
    o orders; n orders;
    txn UUID := gen_random_uuid();
    need BIGINT;
BEGIN
    SELECT * INTO o FROM orders WHERE order_id = p_old;
    IF NOT FOUND THEN RAISE EXCEPTION 'replace_unknown_order' USING DETAIL = p_old::text; END IF;
    PERFORM 1 FROM accounts WHERE user_id = o.user_id FOR UPDATE;
    SELECT * INTO o FROM orders WHERE order_id = p_old FOR UPDATE;
    IF o.status = 'replaced' AND o.replaced_by = p_new THEN RETURN; END IF;
    IF o.replaced_by IS DISTINCT FROM p_new OR o.status NOT IN ('routed', 'partially_filled') THEN
        RAISE EXCEPTION 'replace_not_pending' USING DETAIL = format('%s is %s, replaced_by %s', p_old, o.status,
                                                                    o.replaced_by);
    END IF;
    IF p_left <> o.pending_qty - o.filled_qty OR p_left <= 0 THEN
        RAISE EXCEPTION 'replace_qty_mismatch' USING DETAIL = format('the market maker leaves %s, the ledger %s',
                                                                     p_left, o.pending_qty - o.filled_qty);
    END IF;
    IF o.pending_split IS NOT NULL THEN
        need := o.held;  -- a split's replace: the split's transaction sets the hold (in post-split units)
    ELSE
        need := CASE o.side WHEN 'buy' THEN ceil(p_left::numeric * o.pending_limit / 1000000)::bigint
                ELSE p_left END;
    END IF;
    IF o.held < need THEN
        RAISE EXCEPTION 'replace_beyond_hold' USING DETAIL = format('holds %s, the replacement needs %s', o.held, need);
    END IF;
    IF o.held > need THEN
        IF o.side = 'buy' THEN
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'release', o.user_id, 'cash_held', 'USD', need - o.held, p_old),
                   (txn, 'release', o.user_id, 'cash', 'USD', o.held - need, p_old);
            UPDATE accounts SET cash = cash + (o.held - need), cash_held = cash_held - (o.held - need)
            WHERE user_id = o.user_id;
        ELSE
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'release', o.user_id, 'shares_held', o.symbol, need - o.held, p_old),
                   (txn, 'release', o.user_id, 'shares', o.symbol, o.held - need, p_old);
            UPDATE positions SET qty = qty + (o.held - need), qty_held = qty_held - (o.held - need)
            WHERE user_id = o.user_id AND symbol = o.symbol;
        END IF;
    END IF;
    UPDATE orders SET status = 'replaced', held = 0, pending_extra = 0, reason = 'replaced by ' || p_new,
                      version = version + 1, updated_at = now()
    WHERE order_id = p_old RETURNING * INTO o;
    -- the hold moves from the old order to its replacement inside one user's cash_held: no journal line
    INSERT INTO orders (order_id, user_id, idempotency_key, fingerprint, symbol, side, type, tif, qty, limit_price,
                        reserve_price, held, status, replaces, sent_at, sent_to, split_id)
    VALUES (p_new, o.user_id, o.pending_key, 'replace:' || p_old, o.symbol, o.side, 'limit', o.pending_tif, p_left,
            o.pending_limit, CASE o.side WHEN 'buy' THEN o.pending_limit ELSE 0 END, need, 'routed', p_old, now(),
            o.sent_to, coalesce(o.pending_split, o.split_id))
    RETURNING * INTO n;
    RETURN NEXT o;
    RETURN NEXT n;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION reject_replace(p_old UUID, p_new UUID) RETURNS orders AS $$
DECLARE
    o orders;
    txn UUID := gen_random_uuid();
    extra BIGINT;
BEGIN
    SELECT * INTO o FROM orders WHERE order_id = p_old;
    IF NOT FOUND THEN RETURN NULL; END IF;
    PERFORM 1 FROM accounts WHERE user_id = o.user_id FOR UPDATE;
    SELECT * INTO o FROM orders WHERE order_id = p_old FOR UPDATE;
    IF o.replaced_by IS DISTINCT FROM p_new OR o.status = 'replaced' THEN RETURN NULL; END IF;
    extra := CASE WHEN o.status IN ('routed', 'partially_filled') THEN least(o.pending_extra, o.held) ELSE 0 END;
    IF extra > 0 THEN
        IF o.side = 'buy' THEN
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'release', o.user_id, 'cash_held', 'USD', -extra, p_old),
                   (txn, 'release', o.user_id, 'cash', 'USD', extra, p_old);
            UPDATE accounts SET cash = cash + extra, cash_held = cash_held - extra WHERE user_id = o.user_id;
        ELSE
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'release', o.user_id, 'shares_held', o.symbol, -extra, p_old),
                   (txn, 'release', o.user_id, 'shares', o.symbol, extra, p_old);
            UPDATE positions SET qty = qty + extra, qty_held = qty_held - extra
            WHERE user_id = o.user_id AND symbol = o.symbol;
        END IF;
    END IF;
    UPDATE orders SET held = held - extra, pending_extra = 0, pending_qty = NULL, pending_limit = NULL,
                      pending_tif = NULL, pending_key = NULL, replaced_by = NULL,
                      split_refused = coalesce(pending_split, split_refused), pending_split = NULL,
                      version = version + 1, updated_at = now()
    WHERE order_id = p_old RETURNING * INTO o;
    RETURN o;
END
$$ LANGUAGE plpgsql;

GRANT EXECUTE ON FUNCTION confirm_replace(UUID, UUID, BIGINT), reject_replace(UUID, UUID) TO tickfan_app;
