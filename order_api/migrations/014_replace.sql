-- Replace (issue 15, PATCH /v1/orders/{id}): Alpaca's semantics. The replacement is a new order with a new id;
-- the old one ends `replaced` (terminal, keeping its fills). FIX decides: the ledger asks the market maker with an
-- OrderCancelReplaceRequest (ClOrdID = the replacement's id), and only its answer changes the orders:
--   request_replace  (PATCH, one transaction): the old order's pending terms, its hold raised to cover the worst
--                    case until the answer (old fills at the old price, then the rest at the new), 'hold' journal
--   confirm_replace  (ExecType 5): the old order `replaced`, the replacement inserted for what the market maker says
--                    is left, holding exactly what it needs; the rest released ('release' journal)
--   reject_replace   (OrderCancelReject): the pending terms dropped, the extra hold released
-- orders.status has no CHECK (the lifecycle lives in order_api/model.py). place_orders is left alone.

ALTER TABLE orders ADD COLUMN replaces UUID,            -- the order this one replaced
                   ADD COLUMN replaced_by UUID,         -- the replacement's id: asked for (pending) or done
                   ADD COLUMN pending_qty BIGINT,       -- the asked total quantity (fills of this order included)
                   ADD COLUMN pending_limit BIGINT,
                   ADD COLUMN pending_tif TEXT,
                   ADD COLUMN pending_key TEXT,         -- the replace's idempotency key (the replacement's own)
                   ADD COLUMN pending_extra BIGINT NOT NULL DEFAULT 0 CHECK (pending_extra >= 0);

-- Ask to replace an open limit order of p_user. Returns (code, have, order): code '' with the updated order, or
-- 'repeat' with the order (the same key again), or a refusal code with nothing written.
CREATE FUNCTION request_replace(p_user TEXT, p_order UUID, p_new UUID, p_key TEXT, p_qty BIGINT, p_limit BIGINT,
                                p_tif TEXT, OUT code TEXT, OUT have BIGINT, OUT o orders) AS $$
DECLARE
    txn UUID := gen_random_uuid();
    rest BIGINT; a BIGINT; b BIGINT; target BIGINT; extra BIGINT;
BEGIN
    code := ''; have := 0;
    PERFORM 1 FROM accounts WHERE user_id = p_user FOR UPDATE;
    SELECT * INTO o FROM orders WHERE order_id = p_order AND user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN code := 'order_not_found'; o := NULL; RETURN; END IF;
    IF o.pending_key = p_key THEN
        -- the same request again (the same key and terms): the order as it stands; other terms: a conflict
        code := CASE WHEN (o.pending_qty, o.pending_limit, o.pending_tif) = (p_qty, p_limit, p_tif) THEN 'repeat'
                     ELSE 'idempotency_conflict' END;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM orders WHERE user_id = p_user AND (idempotency_key = p_key OR pending_key = p_key)) THEN
        code := 'idempotency_conflict'; RETURN;
    END IF;
    IF o.status NOT IN ('accepted', 'routed', 'partially_filled') THEN code := 'order_not_open'; RETURN; END IF;
    IF o.status = 'accepted' THEN code := 'order_not_routed'; RETURN; END IF;
    IF o.cancel_requested THEN code := 'cancel_pending'; RETURN; END IF;
    IF o.replaced_by IS NOT NULL THEN code := 'replace_pending'; RETURN; END IF;
    IF p_qty <= o.filled_qty THEN code := 'qty_below_filled'; have := o.filled_qty; RETURN; END IF;
    IF p_qty = o.qty AND p_limit = o.limit_price AND p_tif = o.tif THEN code := 'nothing_changed'; RETURN; END IF;
    rest := o.qty - o.filled_qty;
    IF o.side = 'buy' THEN
        -- until the answer the old order may still fill (up to `a` at its reserve price), then the rest at the new
        -- limit: hold the worst case, plus a unit for the per-order rounding of the old fills
        a := least(rest, p_qty - o.filled_qty);
        b := p_qty - o.filled_qty - a;
        target := greatest(o.held, ceil((p_qty - o.filled_qty)::numeric * p_limit / 1000000)::bigint,
                           ceil((a::numeric * o.reserve_price + b::numeric * p_limit) / 1000000)::bigint + 1);
        extra := target - o.held;
        IF extra > 0 THEN
            SELECT cash INTO have FROM accounts WHERE user_id = p_user;
            IF have < extra THEN code := 'insufficient_funds'; RETURN; END IF;
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'hold', p_user, 'cash', 'USD', -extra, p_order),
                   (txn, 'hold', p_user, 'cash_held', 'USD', extra, p_order);
            UPDATE accounts SET cash = cash - extra, cash_held = cash_held + extra WHERE user_id = p_user;
        END IF;
    ELSE
        extra := greatest(rest, p_qty - o.filled_qty) - rest;
        IF extra > 0 THEN
            SELECT qty INTO have FROM positions WHERE user_id = p_user AND symbol = o.symbol;
            have := coalesce(have, 0);
            IF have < extra THEN code := 'insufficient_shares'; RETURN; END IF;
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'hold', p_user, 'shares', o.symbol, -extra, p_order),
                   (txn, 'hold', p_user, 'shares_held', o.symbol, extra, p_order);
            UPDATE positions SET qty = qty - extra, qty_held = qty_held + extra
            WHERE user_id = p_user AND symbol = o.symbol;
        END IF;
    END IF;
    UPDATE orders SET held = held + extra, pending_extra = extra, pending_qty = p_qty, pending_limit = p_limit,
                      pending_tif = p_tif, pending_key = p_key, replaced_by = p_new, version = version + 1,
                      updated_at = now()
    WHERE order_id = p_order RETURNING * INTO o;
END
$$ LANGUAGE plpgsql;

-- The market maker replaced p_old by p_new, leaving p_left (millionths) to trade. Returns the old order (now
-- `replaced`) and the replacement, in that order; nothing when it was done already (a re-sent report). Raises
-- when the answer does not fit the request (a fill the ledger has not seen): the caller dead-letters it.
CREATE FUNCTION confirm_replace(p_old UUID, p_new UUID, p_left BIGINT) RETURNS SETOF orders AS $$
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
    need := CASE o.side WHEN 'buy' THEN ceil(p_left::numeric * o.pending_limit / 1000000)::bigint ELSE p_left END;
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
                        reserve_price, held, status, replaces, sent_at, sent_to)
    VALUES (p_new, o.user_id, o.pending_key, 'replace:' || p_old, o.symbol, o.side, 'limit', o.pending_tif, p_left,
            o.pending_limit, CASE o.side WHEN 'buy' THEN o.pending_limit ELSE 0 END, need, 'routed', p_old, now(),
            o.sent_to)
    RETURNING * INTO n;
    RETURN NEXT o;
    RETURN NEXT n;
END
$$ LANGUAGE plpgsql;

-- The market maker refused to replace p_old by p_new (too late: filled or closed first). Drops the pending terms
-- and releases the extra hold if the order is still open (closing it released everything already). Returns the
-- order, or NULL when no such replace was pending (answered already).
CREATE FUNCTION reject_replace(p_old UUID, p_new UUID) RETURNS orders AS $$
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
                      pending_tif = NULL, pending_key = NULL, replaced_by = NULL, version = version + 1,
                      updated_at = now()
    WHERE order_id = p_old RETURNING * INTO o;
    RETURN o;
END
$$ LANGUAGE plpgsql;

GRANT EXECUTE ON FUNCTION request_replace(TEXT, UUID, UUID, TEXT, BIGINT, BIGINT, TEXT),
                          confirm_replace(UUID, UUID, BIGINT), reject_replace(UUID, UUID) TO tickfan_app;
