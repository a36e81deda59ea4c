-- Reminders before a visit: one row per confirmed booking and offset, due `offset_minutes`
-- before its start.
--
-- Written by booking-processor in the transaction that confirms the booking (a new one, or
-- the new half of a move; offsets already past are not written: a booking made inside an
-- offset gets no late reminder for it), and dropped in the transaction that cancels or moves
-- it. Every processor replica claims due rows with `FOR UPDATE SKIP LOCKED` through the
-- partial index below, so it reads only what is pending, and publishes one REMINDER_DUE event
-- per row (its event id derived from the booking and the offset, so a re-publish after a
-- crash is the same event and the notifiers' delivery log sends it once per channel); the row
-- is closed in the transaction that held it while the event was published.
-- All statements live in booking-store (`reminders.rs`).
CREATE TABLE reminders (
    booking_id     uuid NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
    offset_minutes integer NOT NULL CHECK (offset_minutes > 0),
    -- The visit's start when the reminder was scheduled; checked again when it is due.
    starts_at      timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    -- pending → sent (its event published) | dropped (the visit was no longer confirmed at
    -- that time, or had already started when the reminder could first be sent).
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dropped')),
    detail         text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    PRIMARY KEY (booking_id, offset_minutes)
);
CREATE INDEX reminders_due ON reminders (due_at) WHERE status = 'pending';

-- A center's own reminder offsets (minutes before the visit); null keeps the platform's
-- setting (`processor.reminder_offsets_minutes`), an empty array sends none.
ALTER TABLE centers
    ADD COLUMN reminder_offsets_minutes integer[]
        CHECK (reminder_offsets_minutes IS NULL
               OR (0 < ALL (reminder_offsets_minutes)
                   AND cardinality(reminder_offsets_minutes) <= 10));
