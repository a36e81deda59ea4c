-- Welcome emails of patients who signed up themselves (POST /auth/signup): an outbox row
-- written in the transaction that creates the patient, so a sign-up that committed is never
-- left without its email, and a failed one never sends one. The API announces each row on
-- the `citaflow_welcome` channel; the email notifier (notifier/src/welcome.rs) wakes on it,
-- and also sweeps every few seconds, so a missed notice only delays the email. Each replica
-- claims a pending row with `FOR UPDATE SKIP LOCKED` and holds the lock while it sends; the
-- email's Message-ID is derived from the patient id, so a send in doubt after a crash is
-- looked up in the mail system's log before it is sent again.
CREATE TABLE welcome_emails (
    patient_id uuid PRIMARY KEY REFERENCES patients (id) ON DELETE CASCADE,
    -- pending → sent | failed (the address refused for good).
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    detail     text,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    closed_at  timestamptz
);
CREATE INDEX welcome_emails_pending ON welcome_emails (created_at) WHERE status = 'pending';
