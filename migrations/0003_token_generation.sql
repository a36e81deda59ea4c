-- Token revocation: every token carries the generation its user had when it was issued, and
-- is accepted only while the user still has it. A password change or a deactivation bumps the
-- generation, so earlier tokens stop working, and stay dead after a re-activation.

ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
