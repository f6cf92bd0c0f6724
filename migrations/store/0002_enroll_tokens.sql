-- One-shot enrollment tokens (`decnet swarm enroll --bootstrap`).
-- The token itself is never stored, only its SHA-256: a copy of the database
-- does not let anyone fetch a bundle. The bundle PEMs live here only until the
-- bundle is served (or the token expires); then they are overwritten with NULL.
-- Times are Unix seconds so expiry checks are plain integer comparisons inside
-- the single atomic UPDATE that claims a token.
CREATE TABLE enroll_tokens (
    token_sha256      TEXT    PRIMARY KEY,      -- lowercase hex
    worker            TEXT    NOT NULL,
    fingerprint       TEXT    NOT NULL,         -- SHA-256 hex of the issued worker.crt
    ca_pem            TEXT,                     -- NULL once served or expired
    cert_pem          TEXT,
    key_pem           TEXT,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    script_fetched_at INTEGER,
    bundle_fetched_at INTEGER,
    source_address    TEXT                      -- IP that fetched the script
) WITHOUT ROWID;
CREATE INDEX enroll_tokens_by_worker ON enroll_tokens (worker);
CREATE INDEX enroll_tokens_live ON enroll_tokens (expires_at) WHERE key_pem IS NOT NULL;
