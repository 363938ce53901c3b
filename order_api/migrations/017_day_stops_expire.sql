-- A day stop that has not triggered expires at the day's rollover like any other day order (issue 15's gap: the
-- market maker expires the day orders it holds, but a stop resting as 'pending_trigger' was never sent to it).
-- The trigger watcher (order_api/stop_watcher.py) expires them when the feed ends system hours, through the same
-- expire_order as the market maker's ExecType C: redefined here to take a 'pending_trigger' order as well, its
-- hold (cash for a buy, shares for a sell) released by the same balanced 'release' transaction. Nothing else
-- changes: an order that is not open still returns NULL (expiring twice, or after a trigger or a cancel won the
-- account lock, changes nothing).

CREATE OR REPLACE FUNCTION expire_order(p_order UUID, p_reason TEXT) RETURNS orders AS $$
DECLARE
    o orders;
    txn UUID := gen_random_uuid();
BEGIN
    SELECT * INTO o FROM orders WHERE order_id = p_order;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- the account first, then the order: the order every other transaction on this user's money takes
    PERFORM 1 FROM accounts WHERE user_id = o.user_id FOR UPDATE;
    SELECT * INTO o FROM orders WHERE order_id = p_order FOR UPDATE;
    IF o.status NOT IN ('pending_trigger', 'accepted', 'routed', 'partially_filled') THEN
        RETURN NULL;
    END IF;
    IF o.held > 0 THEN
        IF o.side = 'buy' THEN
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'release', o.user_id, 'cash_held', 'USD', -o.held, p_order),
                   (txn, 'release', o.user_id, 'cash', 'USD', o.held, p_order);
            UPDATE accounts SET cash = cash + o.held, cash_held = cash_held - o.held WHERE user_id = o.user_id;
        ELSE
            INSERT INTO journal (txn_id, kind, user_id, account, asset, amount, order_id)
            VALUES (txn, 'release', o.user_id, 'shares_held', o.symbol, -o.held, p_order),
                   (txn, 'release', o.user_id, 'shares', o.symbol, o.held, p_order);
            UPDATE positions SET qty = qty + o.held, qty_held = qty_held - o.held
            WHERE user_id = o.user_id AND symbol = o.symbol;
        END IF;
    END IF;
    UPDATE orders SET status = 'expired', held = 0, reason = p_reason, version = version + 1, updated_at = now()
    WHERE order_id = p_order RETURNING * INTO o;
    RETURN o;
END
$$ LANGUAGE plpgsql;
