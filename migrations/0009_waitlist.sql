-- The waitlist: patients waiting for a service at a center (with one doctor or any), within a
-- range of local dates; freed slots offered to them one at a time, first come first offered.
--
-- Entries are written by ingest-api (`/waitlist`). Openings and offers are written by
-- booking-processor's waitlist worker: it reads `booking.events` in its own consumer group,
-- records the slot of every CANCELLED booking someone may be waiting for as an opening, offers
-- each opening to the first matching entry (WAITLIST_OFFERED), and to the next when a hold
-- lapses (WAITLIST_EXPIRED) or is declined; a CONFIRMED booking of a waiting patient that
-- matches their entry closes it. All statements of the worker live in
-- booking-store (`waitlist.rs`).

CREATE TABLE waitlist_entries (
    id          uuid PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients (id),
    service_id  uuid NOT NULL REFERENCES services (id),
    center_id   uuid NOT NULL REFERENCES centers (id),
    -- null: any doctor of the center who offers the service.
    doctor_id   uuid REFERENCES doctors (id),
    -- Local dates at the center, both included.
    date_from   date NOT NULL,
    date_to     date NOT NULL CHECK (date_to >= date_from),
    -- waiting → booked (a matching booking was confirmed) | left (the patient or staff took
    -- the entry off the list) | lapsed (its last date went by).
    status      text NOT NULL DEFAULT 'waiting'
                CHECK (status IN ('waiting', 'booked', 'left', 'lapsed')),
    booking_id  uuid,
    created_by  uuid REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz
);
-- The queue of one center: first come, first offered.
CREATE INDEX waitlist_entries_queue ON waitlist_entries (center_id, created_at, id)
    WHERE status = 'waiting';
CREATE INDEX waitlist_entries_patient ON waitlist_entries (patient_id, created_at);

-- A freed slot: the visit time of a cancelled (or moved-away-from) booking.
CREATE TABLE waitlist_openings (
    id               uuid PRIMARY KEY,
    -- The CANCELLED event that freed it: a redelivered event records nothing twice.
    source_event_id  uuid NOT NULL UNIQUE,
    freed_booking_id uuid NOT NULL,
    doctor_id        uuid NOT NULL,
    center_id        uuid NOT NULL,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    -- open (to be offered, or on offer) → filled (booked through an offer, or taken by
    -- someone else meanwhile) | exhausted (nobody waiting fits it) | past (its time came).
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'filled', 'exhausted', 'past')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz
);
CREATE INDEX waitlist_openings_open ON waitlist_openings (created_at) WHERE status = 'open';

-- One offer of an opening to one entry's patient, held for them until `hold_until`.
CREATE TABLE waitlist_offers (
    -- Also the event id of its WAITLIST_OFFERED event (the notifiers' delivery key).
    id          uuid PRIMARY KEY,
    opening_id  uuid NOT NULL REFERENCES waitlist_openings (id),
    entry_id    uuid NOT NULL REFERENCES waitlist_entries (id),
    patient_id  uuid NOT NULL,
    doctor_id   uuid NOT NULL,
    center_id   uuid NOT NULL,
    service_id  uuid NOT NULL,
    -- The visit offered: the opening's start, the entry's service's duration.
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    hold_until  timestamptz NOT NULL,
    -- open (held for the patient) → accepted (the patient asked for it: a normal booking
    -- command, `booking_id`, is being decided) → taken (confirmed) | failed (rejected);
    -- open → declined | expired (the hold lapsed) | withdrawn (the slot went meanwhile).
    status      text NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'accepted', 'taken', 'failed', 'declined',
                                  'expired', 'withdrawn')),
    booking_id  uuid,
    -- When its WAITLIST_OFFERED event was acknowledged by Kafka.
    published_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz
);
-- Never two live offers of one opening, nor of one doctor's slot, nor to one entry at once.
CREATE UNIQUE INDEX waitlist_offers_one_per_opening ON waitlist_offers (opening_id)
    WHERE status IN ('open', 'accepted');
CREATE UNIQUE INDEX waitlist_offers_one_per_slot ON waitlist_offers (doctor_id, starts_at)
    WHERE status IN ('open', 'accepted');
CREATE UNIQUE INDEX waitlist_offers_one_per_entry ON waitlist_offers (entry_id)
    WHERE status IN ('open', 'accepted');
-- Each entry is offered each opening at most once.
CREATE UNIQUE INDEX waitlist_offers_entry_opening ON waitlist_offers (entry_id, opening_id);
CREATE INDEX waitlist_offers_holds ON waitlist_offers (hold_until) WHERE status = 'open';
CREATE INDEX waitlist_offers_booking ON waitlist_offers (booking_id) WHERE booking_id IS NOT NULL;
