-- Files the forwarder is shipping and how far the master has acknowledged.
CREATE TABLE files (
    file_id     INTEGER PRIMARY KEY,
    dev         INTEGER NOT NULL,
    inode       INTEGER NOT NULL,
    acked       INTEGER NOT NULL,
    -- set once the file was rotated away and read to its end
    final_size  INTEGER,
    updated_at  TEXT    NOT NULL
);
