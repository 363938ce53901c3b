-- A faulty (or hostile) counterparty must not reach the journal: the database refuses an execution that does not
-- fit its order, whatever code inserts it (the ledger is the last line; Ledger.fill checks the same rules first
-- for a clear reason, and the execution worker dead-letters the report).
--
-- An execution now records the symbol and side it was reported for; rows from before this migration have NULL.
ALTER TABLE executions ADD COLUMN symbol TEXT, ADD COLUMN side TEXT;

-- Every new execution, checked against its (already locked) order. Each refusal raises with a machine-readable
-- code as the message (the code Ledger.fill's own check gives), the numbers as the detail.
CREATE FUNCTION check_execution() RETURNS TRIGGER AS $$
DECLARE
    o orders;
BEGIN
    SELECT * INTO o FROM orders WHERE order_id = NEW.order_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fill_unknown_order' USING DETAIL = NEW.order_id::TEXT;
    END IF;
    IF NEW.symbol IS NULL OR NEW.side IS NULL THEN
        RAISE EXCEPTION 'fill_without_terms' USING DETAIL = 'an execution must name its symbol and side';
    END IF;
    IF NEW.symbol <> o.symbol OR NEW.side <> o.side THEN
        RAISE EXCEPTION 'fill_wrong_instrument'
            USING DETAIL = format('%s %s reported for a %s %s order', NEW.side, NEW.symbol, o.side, o.symbol);
    END IF;
    IF o.status NOT IN ('routed', 'partially_filled', 'accepted') THEN
        RAISE EXCEPTION 'fill_order_closed' USING DETAIL = o.status;
    END IF;
    IF o.filled_qty + NEW.qty > o.qty THEN
        RAISE EXCEPTION 'fill_overfills'
            USING DETAIL = format('%s more on %s of %s filled', NEW.qty, o.filled_qty, o.qty);
    END IF;
    -- buys: never above the limit, nor above the price the cash was held at (a market buy's collar);
    -- sells: never below the limit. Price improvement (a buy lower, a sell higher) is accepted.
    IF o.side = 'buy' AND (NEW.price > o.limit_price OR (o.reserve_price > 0 AND NEW.price > o.reserve_price)) THEN
        RAISE EXCEPTION 'fill_beyond_limit'
            USING DETAIL = format('buy filled at %s, limit %s', NEW.price, coalesce(o.limit_price, o.reserve_price));
    END IF;
    IF o.side = 'sell' AND NEW.price < o.limit_price THEN
        RAISE EXCEPTION 'fill_beyond_limit' USING DETAIL = format('sell filled at %s, limit %s', NEW.price, o.limit_price);
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER executions_fit_their_order BEFORE INSERT ON executions FOR EACH ROW EXECUTE FUNCTION check_execution();

-- Record one execution, idempotently by (order, ExecID): true when it is new (the caller then posts it), false
-- when the very same execution was recorded before (a re-sent report: ignored). The same ExecID with other
-- terms is not a duplicate but a counterparty fault: refused ('fill_exec_id_reused').
CREATE FUNCTION record_execution(p_order UUID, p_exec TEXT, p_symbol TEXT, p_side TEXT, p_qty BIGINT,
                                 p_price BIGINT) RETURNS BOOLEAN AS $$
DECLARE
    e executions;
BEGIN
    SELECT * INTO e FROM executions WHERE order_id = p_order AND exec_id = p_exec;
    IF FOUND THEN
        IF e.qty = p_qty AND e.price = p_price AND coalesce(e.symbol, p_symbol) = p_symbol
                AND coalesce(e.side, p_side) = p_side THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'fill_exec_id_reused'
            USING DETAIL = format('ExecID %s was %s at %s, now %s at %s', p_exec, e.qty, e.price, p_qty, p_price);
    END IF;
    INSERT INTO executions (order_id, exec_id, symbol, side, qty, price)
    VALUES (p_order, p_exec, p_symbol, p_side, p_qty, p_price);
    RETURN true;
END
$$ LANGUAGE plpgsql;

-- When a NewOrderSingle for the order was (about to be) put on the wire: set just before the write, cleared only
-- when the FIX client refused the message before writing a byte. An order with sent_at is never re-sent blindly:
-- "unknown order" from a market maker that restarted may mean it was filled and forgotten (see execution.py).
-- Orders routed before this migration are taken as sent.
ALTER TABLE orders ADD COLUMN sent_at TIMESTAMPTZ;
UPDATE orders SET sent_at = updated_at WHERE status <> 'accepted';
-- To which incarnation of the market maker (its Logon's tag 9100) it was sent: the same incarnation answering
-- "unknown order" never received it (it forgets no open order), so it may be sent again; another one may have
-- filled it and forgotten, so it must not.
ALTER TABLE orders ADD COLUMN sent_to TEXT;
