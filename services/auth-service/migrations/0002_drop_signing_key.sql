-- The signing key no longer lives in the database: auth-service derives it from
-- JWT_SIGNING_SECRET (a Secrets Manager secret) or reads JWT_PRIVATE_KEY. The plain-text
-- private key stored here is dropped; tokens it signed stop verifying.
DROP TABLE IF EXISTS signing_key;
