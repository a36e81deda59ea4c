-- Directory and authentication: users may exist without a password (patients and doctors
-- created in bulk log in once one is set), patients' emails are unique, and the person who
-- asked for each booking is recorded.

ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;

CREATE UNIQUE INDEX patients_email_key ON patients (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX patients_name ON patients (lower(name));
CREATE INDEX doctors_name ON doctors (lower(name));
CREATE INDEX users_role ON users (role);
