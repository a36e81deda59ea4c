-- `Idempotency-Key` on booking commands (create, cancel, reschedule): one row per key a caller
-- used, so a retried request answers the first one's outcome instead of acting twice.
-- Written only by ingest-api (src/http/idempotency.rs). A create's row is inserted in the
-- transaction that writes its pending booking, so a request cut off mid-flight leaves either
-- both or neither. Rows live 24 hours; the API deletes a caller's expired rows lazily.
CREATE TABLE idempotency_keys (
    user_id      UUID        NOT NULL,
    key          TEXT        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the operation, its path id and its parsed body.
    request_hash BYTEA       NOT NULL,
    -- The booking created (create, reschedule) or acted on (cancel).
    booking_id   UUID        NOT NULL,
    -- The HTTP status of the recorded answer; NULL while the first request is in flight.
    status       SMALLINT,
    response     JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- For a sweep of expired keys across users.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
