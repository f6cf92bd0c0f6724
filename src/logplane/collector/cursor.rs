//! Pure bookkeeping of the collector: Docker log timestamps, per-container
//! cursors that skip what was already written, line assembly from Docker's
//! log messages, and the crash-recovery rule of the write journal.

use std::str::FromStr;

/// How far one container's log has been written: the Docker timestamp (ns
/// since the epoch) of the last line written, and how many lines carried
/// exactly that timestamp (Docker timestamps can repeat; counting them keeps
/// the cursor exact where "skip ≤ timestamp" would drop a line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub ts: i64,
    pub n: u32,
}

impl Cursor {
    /// The `since` to ask Docker for (whole seconds; older lines of that
    /// second come back and are skipped by [`Tracker::admit`]).
    pub fn since_secs(&self) -> i32 {
        i32::try_from(self.ts.div_euclid(1_000_000_000))
            .unwrap_or(0)
            .max(0)
    }
}

/// Decides, line by line, whether a container's line is new. Each follow of
/// the container's log is a new `session` that replays from `since`.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    pub cursor: Cursor,
    session: u64,
    /// Lines at `cursor.ts` seen in this session.
    seen_at_ts: u32,
}

impl Tracker {
    pub fn new(cursor: Cursor) -> Tracker {
        Tracker {
            cursor,
            session: u64::MAX,
            seen_at_ts: 0,
        }
    }

    /// True when the line (of `session`, stamped `ts`) was not written yet;
    /// the cursor then moves past it.
    pub fn admit(&mut self, session: u64, ts: i64) -> bool {
        if session != self.session {
            self.session = session;
            self.seen_at_ts = 0;
        }
        if ts < self.cursor.ts {
            return false;
        }
        if ts == self.cursor.ts {
            self.seen_at_ts += 1;
            if self.seen_at_ts <= self.cursor.n {
                return false;
            }
            self.cursor.n += 1;
            return true;
        }
        self.cursor = Cursor { ts, n: 1 };
        self.seen_at_ts = 1;
        true
    }
}

/// Splits Docker's `timestamps=true` prefix (`RFC3339Nano SP`) off a log
/// message: the time in ns and the rest. `None` if there is no valid prefix.
pub fn split_timestamp(msg: &[u8]) -> Option<(i64, &[u8])> {
    let sp = memchr::memchr(b' ', msg)?;
    let text = std::str::from_utf8(&msg[..sp]).ok()?;
    let ts = jiff::Timestamp::from_str(text).ok()?;
    let ns = i64::try_from(ts.as_nanosecond()).ok()?;
    Some((ns, &msg[sp + 1..]))
}

/// Reassembles whole lines from a container's log messages. Docker splits
/// lines longer than 16 KiB into several messages (each with its own
/// timestamp; only the last ends with a newline). A line keeps the timestamp
/// of its last piece; lines above `max` bytes are cut.
#[derive(Debug)]
pub struct LineAssembler {
    partial: Vec<u8>,
    max: usize,
}

impl LineAssembler {
    pub fn new(max: usize) -> LineAssembler {
        LineAssembler {
            partial: Vec::new(),
            max: max.max(1),
        }
    }

    /// Feeds one message's text (timestamp already split off); calls `emit`
    /// for each completed line (without its newline or a trailing CR).
    pub fn feed(&mut self, text: &[u8], mut emit: impl FnMut(&[u8])) {
        let mut rest = text;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            self.push(&rest[..i]);
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            emit(&line);
            self.partial = line;
            self.partial.clear();
            rest = &rest[i + 1..];
        }
        self.push(rest);
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.max.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// A line is pending (its last piece has not arrived).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }
}

/// What to do at start-up with a journal entry left by a crash: the batch
/// that was about to be appended at `start..end` of the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The batch is in the file: its cursors become the committed ones.
    Adopt,
    /// The batch never reached the file: forget it (its lines come again).
    Discard,
    /// Part of it reached the file (power loss): cut the file back to
    /// `start` and forget it, so nothing is written twice.
    Truncate(u64),
}

pub fn recover(file_len: u64, start: u64, end: u64) -> Recovery {
    if file_len >= end {
        Recovery::Adopt
    } else if file_len <= start {
        Recovery::Discard
    } else {
        Recovery::Truncate(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_skips_what_was_written_even_with_equal_timestamps() {
        let mut t = Tracker::new(Cursor::default());
        assert!(t.admit(1, 10));
        assert!(t.admit(1, 20));
        assert!(t.admit(1, 20), "a second line with the same time is new");
        assert_eq!(t.cursor, Cursor { ts: 20, n: 2 });
        // A restart replays from `since`: everything seen is skipped, the
        // third line at 20 and later ones are new.
        let mut r = Tracker::new(t.cursor);
        assert!(!r.admit(7, 10));
        assert!(!r.admit(7, 20));
        assert!(!r.admit(7, 20));
        assert!(r.admit(7, 20));
        assert!(r.admit(7, 30));
        assert_eq!(r.cursor, Cursor { ts: 30, n: 1 });
        // Another session of the same tracker replays too.
        assert!(!r.admit(8, 20));
        assert!(!r.admit(8, 30));
        assert!(r.admit(8, 31));
    }

    #[test]
    fn since_is_whole_seconds_floor() {
        let c = Cursor {
            ts: 1_700_000_000_999_999_999,
            n: 1,
        };
        assert_eq!(c.since_secs(), 1_700_000_000);
        assert_eq!(Cursor::default().since_secs(), 0);
    }

    #[test]
    fn splits_docker_timestamps() {
        let (ts, rest) = split_timestamp(b"2026-11-23T10:00:00.123456789Z <134>1 x\n").unwrap();
        assert_eq!(rest, b"<134>1 x\n");
        assert_eq!(ts % 1_000_000_000, 123_456_789);
        // Docker trims trailing zeros of the fraction.
        let (t2, _) = split_timestamp(b"2026-11-23T10:00:00.1Z x").unwrap();
        assert_eq!(t2 % 1_000_000_000, 100_000_000);
        assert!(split_timestamp(b"no timestamp here").is_none());
        assert!(split_timestamp(b"").is_none());
        assert!(split_timestamp(b"\xff\xfe x").is_none());
    }

    #[test]
    fn assembles_split_lines_and_cuts_long_ones() {
        let mut a = LineAssembler::new(8);
        let mut out: Vec<Vec<u8>> = Vec::new();
        a.feed(b"abc", |l| out.push(l.to_vec()));
        assert!(out.is_empty() && a.has_partial());
        a.feed(b"def\n", |l| out.push(l.to_vec()));
        a.feed(b"1\r\n2\n", |l| out.push(l.to_vec()));
        a.feed(b"0123456789abcdef\n", |l| out.push(l.to_vec()));
        assert_eq!(
            out,
            vec![
                b"abcdef".to_vec(),
                b"1".to_vec(),
                b"2".to_vec(),
                b"01234567".to_vec()
            ]
        );
        assert!(!a.has_partial());
    }

    #[test]
    fn journal_recovery() {
        assert_eq!(recover(100, 100, 150), Recovery::Discard);
        assert_eq!(recover(150, 100, 150), Recovery::Adopt);
        assert_eq!(recover(120, 100, 150), Recovery::Truncate(100));
        assert_eq!(
            recover(90, 100, 150),
            Recovery::Discard,
            "file cut by hand: nothing to adopt"
        );
    }
}
