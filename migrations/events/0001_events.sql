-- Attacker events received by the master's log listener.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    received_at   TEXT    NOT NULL,
    -- from the peer certificate's CN, never from the message
    source_worker TEXT    NOT NULL,
    -- origin for exactly-once (NULL for bare RFC 5425 senders)
    file_id       INTEGER,
    offset        INTEGER,
    facility      INTEGER,
    severity      INTEGER,
    timestamp     TEXT,
    hostname      TEXT,   -- the decky
    app_name      TEXT,   -- the service
    msgid         TEXT,   -- the event type
    src_ip        TEXT,
    fields        TEXT,   -- structured data as JSON {sd-id: {param: value}}
    msg           TEXT,
    parse_error   TEXT,   -- set when the line is not valid RFC 5424 (kept anyway)
    raw           BLOB    NOT NULL
);

-- Per (worker, file) high-water mark: the next byte offset not yet stored.
-- Updated in the same transaction as the events it covers.
CREATE TABLE high_water (
    source_worker TEXT    NOT NULL,
    file_id       INTEGER NOT NULL,
    next_offset   INTEGER NOT NULL,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (source_worker, file_id)
) WITHOUT ROWID;

-- Committed sizes of the listener's append-only files (forensic log, JSON
-- lines): on restart, anything past them was not committed and is cut off.
CREATE TABLE sinks (
    path           TEXT    PRIMARY KEY,
    committed_size INTEGER NOT NULL
) WITHOUT ROWID;
