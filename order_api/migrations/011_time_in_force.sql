-- Time in force (issue 15): gtc, fok, opg and cls beside day and ioc; extended-hours limit orders; and the
-- "expired" status a day order takes when its session ends, its hold released in the same transaction.
--
-- orders.status has no CHECK constraint (the lifecycle lives in order_api/model.py); "expired" needs none here.
-- place_orders (004, and whoever redefines it) is left alone: it passes tif through as text, and an
-- extended-hours order arrives as '<tif>+ext', which the trigger below splits into tif and extended_hours
-- before the CHECK sees it.

ALTER TABLE orders DROP CONSTRAINT orders_tif_check;
ALTER TABLE orders ADD CONSTRAINT orders_tif_check CHECK (tif IN ('day', 'gtc', 'ioc', 'fok', 'opg', 'cls'));
ALTER TABLE orders ADD COLUMN extended_hours BOOLEAN NOT NULL DEFAULT false;

CREATE FUNCTION split_extended_hours() RETURNS TRIGGER AS $$
BEGIN
    IF NEW.tif LIKE '%+ext' THEN
        NEW.tif := left(NEW.tif, -4);
        NEW.extended_hours := true;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER orders_extended_hours BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION split_extended_hours();

-- Expire one open order (a day order its session's end closed, as the market maker reports with ExecType C):
-- under the owner's account lock, release what it still holds with a balanced 'release' journal transaction,
-- move the cached balances by the same amounts, and close it as 'expired'. Returns the expired order, or NULL
-- when it was not open (already filled, cancelled or expired: expiring twice changes nothing). The caller
-- writes the order update to the outbox in the same transaction (the frame is built in Python).
CREATE FUNCTION expire_order(p_order UUID, p_reason TEXT) RETURNS orders AS $$
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
    IF o.status NOT IN ('accepted', 'routed', 'partially_filled') THEN
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

GRANT EXECUTE ON FUNCTION split_extended_hours(), expire_order(UUID, TEXT) TO tickfan_app;
