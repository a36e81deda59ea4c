-- After the booking: attendance and the history of every change.
--
-- Attendance is recorded on the appointment (booking-processor, through booking-store) once a
-- confirmed visit has started; the status stays `confirmed`, so the no-overlap constraint and
-- the agenda keep seeing the doctor busy then. A correction overwrites it (its event says so).
ALTER TABLE appointments
    ADD COLUMN attendance            text CHECK (attendance IN ('attended', 'no_show')),
    ADD COLUMN attendance_marked_at  timestamptz;

-- A patient's no-show count, read by staff.
CREATE INDEX appointments_no_shows ON appointments (patient_id) WHERE attendance = 'no_show';
-- The history follows a booking's moves both ways (previous_booking_id up, the moves down).
CREATE INDEX appointments_previous ON appointments (previous_booking_id)
    WHERE previous_booking_id IS NOT NULL;

-- Who caused each event: the user who sent the command (the command's requested_by) and
-- their role when it was decided; both null for the platform's own commands (an expiry).
-- Events recorded before this migration have no actor.
ALTER TABLE booking_events
    ADD COLUMN actor_id   uuid,
    ADD COLUMN actor_role text;
