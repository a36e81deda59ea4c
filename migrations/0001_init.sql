-- Citaflow schema: the directory (users, centers, doctors, patients), appointments with the
-- no-overlap guarantee, the processor's idempotency and event log, and the notifier's
-- delivery log.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'secretary', 'doctor', 'patient')),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE centers (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    address    text NOT NULL,
    timezone   text NOT NULL,
    language   text CHECK (language IN ('es', 'en')),
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX centers_name_key ON centers (lower(name));

CREATE TABLE doctors (
    id         uuid PRIMARY KEY,
    user_id    uuid UNIQUE REFERENCES users (id),
    name       text NOT NULL,
    specialty  text NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patients (
    id         uuid PRIMARY KEY,
    user_id    uuid UNIQUE REFERENCES users (id),
    name       text NOT NULL,
    phone      text,
    email      text,
    language   text CHECK (language IN ('es', 'en')),
    status     text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per booking. ingest-api inserts it `pending` when it accepts a request (so a GET
-- right after the 202 finds it); booking-processor decides it. Doctor, patient and center
-- carry no foreign keys on purpose: a request naming an unknown doctor is recorded and
-- rejected with a reason, not lost.
CREATE TABLE appointments (
    id                  uuid PRIMARY KEY,
    command_id          uuid NOT NULL UNIQUE,
    doctor_id           uuid NOT NULL,
    patient_id          uuid NOT NULL,
    center_id           uuid NOT NULL,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    reason              text,
    status              text NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    reason_code         text,
    reason_message      text,
    previous_booking_id uuid,
    requested_by        uuid,
    requested_at        timestamptz NOT NULL,
    decided_at          timestamptz,
    cancelled_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT appointments_time_order CHECK (ends_at > starts_at),
    -- The database itself guarantees that no doctor is confirmed twice for overlapping time,
    -- whatever the number of processors or replays.
    CONSTRAINT appointments_no_overlap EXCLUDE USING gist (
        doctor_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status = 'confirmed')
);
CREATE INDEX appointments_doctor_start ON appointments (doctor_id, starts_at);
CREATE INDEX appointments_patient_start ON appointments (patient_id, starts_at);
CREATE INDEX appointments_center_start ON appointments (center_id, starts_at);
CREATE INDEX appointments_status_start ON appointments (status, starts_at);

-- Commands already decided. A redelivered command finds its row here and its events are
-- re-published from booking_events instead of being decided again.
CREATE TABLE processed_commands (
    command_id   uuid PRIMARY KEY,
    booking_id   uuid NOT NULL,
    kind         text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Every event published to booking.events, as published (the Avro record as JSON), in order.
CREATE TABLE booking_events (
    event_id    uuid PRIMARY KEY,
    seq         bigserial NOT NULL UNIQUE,
    command_id  uuid NOT NULL,
    booking_id  uuid NOT NULL,
    kind        text NOT NULL,
    payload     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX booking_events_command ON booking_events (command_id, seq);
CREATE INDEX booking_events_booking ON booking_events (booking_id, seq);

-- One row per event and channel: a notification is sent at most once per channel even when
-- the event is delivered again.
CREATE TABLE notification_deliveries (
    event_id   uuid NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'sms')),
    booking_id uuid NOT NULL,
    status     text NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'skipped')),
    detail     text,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, channel)
);
