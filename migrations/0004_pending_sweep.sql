-- The processor's sweep for bookings left pending (their command never reached Kafka) reads
-- only pending rows, oldest request first.
CREATE INDEX appointments_pending ON appointments (requested_at) WHERE status = 'pending';
