-- The agenda model: services (kinds of visit) and the doctors who offer them, where and when
-- each doctor works (weekly hours per center, in the center's time zone), exceptions (time
-- off, extra openings), and the service and occupied time of each appointment.
--
-- Times of day are minutes since local midnight (0..1440, so a range may end at 24:00);
-- weekdays are ISO (1 = Monday .. 7 = Sunday). Local times are turned into instants with the
-- center's time zone by the `citaflow-agenda` crate, so daylight saving is the tz database's.

CREATE TABLE services (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL,
    duration_minutes      integer NOT NULL CHECK (duration_minutes > 0),
    buffer_before_minutes integer NOT NULL DEFAULT 0 CHECK (buffer_before_minutes >= 0),
    buffer_after_minutes  integer NOT NULL DEFAULT 0 CHECK (buffer_after_minutes >= 0),
    active                boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX services_name_key ON services (lower(name));

-- Which doctors offer which services.
CREATE TABLE doctor_services (
    doctor_id  uuid NOT NULL REFERENCES doctors (id),
    service_id uuid NOT NULL REFERENCES services (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (doctor_id, service_id)
);
CREATE INDEX doctor_services_service ON doctor_services (service_id);

-- Weekly working hours of a doctor at a center, valid from/until a date (inclusive, in the
-- center's time zone; NULL: unbounded). A doctor works at a center when they have hours there.
CREATE TABLE working_hours (
    id           uuid PRIMARY KEY,
    doctor_id    uuid NOT NULL REFERENCES doctors (id),
    center_id    uuid NOT NULL REFERENCES centers (id),
    weekday      smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute smallint NOT NULL,
    end_minute   smallint NOT NULL,
    valid_from   date,
    valid_until  date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT working_hours_range CHECK (0 <= start_minute AND start_minute < end_minute AND end_minute <= 1440),
    CONSTRAINT working_hours_validity CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_from <= valid_until)
);
CREATE INDEX working_hours_doctor ON working_hours (doctor_id);
CREATE INDEX working_hours_center ON working_hours (center_id);

-- Exceptions to the weekly hours on one local date: `time_off` (the whole day when it has no
-- times; at every center when it names none) or `extra` (an opening at one center).
CREATE TABLE agenda_exceptions (
    id           uuid PRIMARY KEY,
    doctor_id    uuid NOT NULL REFERENCES doctors (id),
    center_id    uuid REFERENCES centers (id),
    kind         text NOT NULL CHECK (kind IN ('time_off', 'extra')),
    date         date NOT NULL,
    start_minute smallint,
    end_minute   smallint,
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agenda_exceptions_times CHECK ((start_minute IS NULL) = (end_minute IS NULL)),
    CONSTRAINT agenda_exceptions_range CHECK (start_minute IS NULL OR (0 <= start_minute AND start_minute < end_minute AND end_minute <= 1440)),
    CONSTRAINT agenda_exceptions_extra CHECK (kind = 'time_off' OR (center_id IS NOT NULL AND start_minute IS NOT NULL))
);
CREATE INDEX agenda_exceptions_doctor_date ON agenda_exceptions (doctor_id, date);

-- An appointment's service, and the time it keeps the doctor busy: the visit widened by the
-- service's buffers (NULL: exactly the visit). The no-overlap guarantee now covers the
-- buffers too.
ALTER TABLE appointments
    ADD COLUMN service_id     uuid,
    ADD COLUMN occupied_from  timestamptz,
    ADD COLUMN occupied_until timestamptz;

ALTER TABLE appointments DROP CONSTRAINT appointments_no_overlap;
ALTER TABLE appointments ADD CONSTRAINT appointments_no_overlap EXCLUDE USING gist (
    doctor_id WITH =,
    tstzrange(coalesce(occupied_from, starts_at), coalesce(occupied_until, ends_at), '[)') WITH &&
) WHERE (status = 'confirmed');
