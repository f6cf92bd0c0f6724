-- The worker collector's progress: per container, the Docker timestamp of
-- the last line written to the local log file (and how many lines carried
-- exactly that timestamp).
CREATE TABLE cursors (
    container_id TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    ts_nanos     INTEGER NOT NULL,
    n_at_ts      INTEGER NOT NULL,
    updated_at   TEXT    NOT NULL
) WITHOUT ROWID;

-- The batch being appended (at most one row): written before the append,
-- removed with the cursor update after it. A row left by a crash says whether
-- the batch reached the file (adopt its cursors) or not (forget it).
CREATE TABLE journal (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    start    INTEGER NOT NULL,
    end      INTEGER NOT NULL,
    -- JSON [{"id": …, "name": …, "ts": …, "n": …}]
    cursors  TEXT    NOT NULL
);
