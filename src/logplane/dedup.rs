//! Exactly-once bookkeeping on the master: per (worker, file) the next byte
//! offset not yet stored. Pure, so the rules are tested directly.

use std::collections::HashMap;

/// What to do with one incoming enveloped line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New: store it.
    Store,
    /// Already stored (a resend after a reconnect): drop it, but still ack.
    Duplicate,
}

/// High-water marks, with changes staged per batch so a failed commit leaves
/// the committed view untouched.
#[derive(Debug, Default, Clone)]
pub struct HighWater {
    committed: HashMap<(String, u64), u64>,
    staged: HashMap<(String, u64), u64>,
}

impl HighWater {
    pub fn from_committed(marks: impl IntoIterator<Item = ((String, u64), u64)>) -> Self {
        HighWater {
            committed: marks.into_iter().collect(),
            staged: HashMap::new(),
        }
    }

    fn current(&self, key: &(String, u64)) -> u64 {
        self.staged
            .get(key)
            .or_else(|| self.committed.get(key))
            .copied()
            .unwrap_or(0)
    }

    /// Judges the line at `offset` of `len` bytes (newline excluded) and
    /// stages the new mark when it is stored.
    pub fn judge(&mut self, worker: &str, file_id: u64, offset: u64, len: usize) -> Verdict {
        let end = offset.saturating_add(len as u64).saturating_add(1);
        // Hot path (every line): find the staged mark without allocating a key.
        if let Some(mark) = self.staged_mark(worker, file_id) {
            if end <= *mark {
                return Verdict::Duplicate;
            }
            *mark = end;
            return Verdict::Store;
        }
        let key = (worker.to_string(), file_id);
        if end <= self.current(&key) {
            return Verdict::Duplicate;
        }
        self.staged.insert(key, end);
        Verdict::Store
    }

    /// The staged mark of (worker, file): batches hold few files, so a scan
    /// beats building an owned key per line.
    fn staged_mark(&mut self, worker: &str, file_id: u64) -> Option<&mut u64> {
        if self.staged.len() > 16 {
            return self.staged.get_mut(&(worker.to_string(), file_id));
        }
        self.staged
            .iter_mut()
            .find(|((w, f), _)| *f == file_id && w == worker)
            .map(|(_, v)| v)
    }

    /// The staged marks, to write in the batch's transaction.
    pub fn staged(&self) -> impl Iterator<Item = (&(String, u64), &u64)> {
        self.staged.iter()
    }

    /// The batch committed: staged marks become the committed view.
    pub fn commit(&mut self) {
        for (k, v) in self.staged.drain() {
            self.committed.insert(k, v);
        }
    }

    /// The batch failed: forget what it staged.
    pub fn rollback(&mut self) {
        self.staged.clear();
    }

    pub fn get(&self, worker: &str, file_id: u64) -> u64 {
        self.current(&(worker.to_string(), file_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_are_duplicates_and_new_lines_advance() {
        let mut h = HighWater::default();
        assert_eq!(h.judge("w1", 7, 0, 9), Verdict::Store); // bytes 0..10
        assert_eq!(h.judge("w1", 7, 10, 4), Verdict::Store); // 10..15
        h.commit();
        assert_eq!(h.get("w1", 7), 15);
        assert_eq!(h.judge("w1", 7, 0, 9), Verdict::Duplicate);
        assert_eq!(h.judge("w1", 7, 10, 4), Verdict::Duplicate);
        assert_eq!(h.judge("w1", 7, 15, 1), Verdict::Store);
        // Another worker's identical origin is independent (credited by CN).
        assert_eq!(h.judge("w2", 7, 0, 9), Verdict::Store);
        // Another file of the same worker too.
        assert_eq!(h.judge("w1", 8, 0, 9), Verdict::Store);
    }

    #[test]
    fn rollback_forgets_the_failed_batch() {
        let mut h = HighWater::from_committed([(("w1".to_string(), 1), 100)]);
        assert_eq!(h.judge("w1", 1, 100, 10), Verdict::Store);
        h.rollback();
        assert_eq!(h.get("w1", 1), 100);
        assert_eq!(
            h.judge("w1", 1, 100, 10),
            Verdict::Store,
            "the resend is stored after a failed commit"
        );
    }

    #[test]
    fn duplicates_within_one_batch_are_caught() {
        let mut h = HighWater::default();
        assert_eq!(h.judge("w", 1, 0, 5), Verdict::Store);
        assert_eq!(h.judge("w", 1, 0, 5), Verdict::Duplicate);
    }
}
