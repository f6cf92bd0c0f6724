use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// The work queue: each key is due at most once, at its earliest requested
/// time (as kube-runtime's scheduler does), so bursts of changes collapse.
#[derive(Debug, Default)]
pub struct Scheduler {
    due: BTreeSet<(Instant, String)>,
    by_key: HashMap<String, Instant>,
}

impl Scheduler {
    pub fn schedule(&mut self, key: &str, at: Instant) {
        match self.by_key.get(key) {
            Some(cur) if *cur <= at => {}
            Some(cur) => {
                self.due.remove(&(*cur, key.to_string()));
                self.due.insert((at, key.to_string()));
                self.by_key.insert(key.to_string(), at);
            }
            None => {
                self.due.insert((at, key.to_string()));
                self.by_key.insert(key.to_string(), at);
            }
        }
    }

    /// The next key whose time has come.
    pub fn pop_due(&mut self, now: Instant) -> Option<String> {
        let first = self.due.first()?.clone();
        if first.0 > now {
            return None;
        }
        self.due.remove(&first);
        self.by_key.remove(&first.1);
        Some(first.1)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.first().map(|(t, _)| *t)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keeps_earliest_and_dedupes() {
        let t0 = Instant::now();
        let mut s = Scheduler::default();
        s.schedule("a", t0 + Duration::from_secs(10));
        s.schedule("a", t0 + Duration::from_secs(1));
        s.schedule("a", t0 + Duration::from_secs(5));
        s.schedule("b", t0);
        assert_eq!(s.len(), 2);
        assert_eq!(s.pop_due(t0).as_deref(), Some("b"));
        assert_eq!(s.pop_due(t0), None);
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(s.pop_due(t0 + Duration::from_secs(2)).as_deref(), Some("a"));
        assert!(s.is_empty());
    }
}
