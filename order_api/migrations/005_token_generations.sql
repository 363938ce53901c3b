-- "Log out everywhere": per user, the generation of their tokens (bumped by each logout everywhere) and the
-- time before which their tokens are refused. A token whose iat is before revoked_before (or that has no iat) is
-- refused by the order API; the revocation reaches the fan-out nodes through the outbox (topic 'session', a
-- ServerMessage with `revoked` on the user's order channel), which close the user's older WebSockets.
CREATE TABLE token_generations (
    user_id        TEXT PRIMARY KEY,
    generation     BIGINT NOT NULL CHECK (generation > 0),
    revoked_before BIGINT NOT NULL,  -- Unix seconds
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE outbox DROP CONSTRAINT outbox_topic_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_topic_check CHECK (topic IN ('execution', 'order_update', 'session'));
