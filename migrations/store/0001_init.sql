-- Desired + observed state of every resource, Kubernetes-style.
CREATE TABLE objects (
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    uid              TEXT    NOT NULL UNIQUE,
    resource_version INTEGER NOT NULL,
    -- whole object as JSON: metadata, spec, status
    body             TEXT    NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

-- Owner references, for cascading delete (owner uid -> dependent).
CREATE TABLE dependents (
    owner_uid TEXT NOT NULL,
    kind      TEXT NOT NULL,
    name      TEXT NOT NULL,
    PRIMARY KEY (owner_uid, kind, name)
) WITHOUT ROWID;

-- The change feed: one row per write; rv is the cluster-wide resourceVersion.
CREATE TABLE changes (
    rv   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    op   TEXT NOT NULL -- ADDED | MODIFIED | DELETED
);

-- Kubernetes-style events for `describe`.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    type        TEXT    NOT NULL, -- Normal | Warning
    reason      TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1,
    first_time  TEXT    NOT NULL,
    last_time   TEXT    NOT NULL
);
CREATE INDEX events_by_object ON events (kind, name, id);

-- Revoked certificate fingerprints; the TLS verifiers refuse these.
CREATE TABLE revoked_certs (
    fingerprint TEXT PRIMARY KEY,
    subject     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    revoked_at  TEXT NOT NULL
) WITHOUT ROWID;
