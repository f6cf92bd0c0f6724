//! Fleet placement (pure): which worker runs which of a fleet's N deckies.
//!
//! Placement is sticky: a decky stays on its worker while that worker may
//! keep it (Active, cordoned, or Unreachable for less than the grace period)
//! so a flapping worker or a scale-up never shuffles running deckies. Deckies
//! of workers that are gone, past their grace or no longer selected move to
//! the least-loaded eligible workers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::api::{SchedulingStrategy, WorkerPhase};

/// What the scheduler knows of one worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub phase: Option<WorkerPhase>,
    /// How long the worker has been Unreachable (None when it is not).
    pub unreachable_for: Option<Duration>,
    pub capacity: Option<u32>,
    pub weight: u32,
    pub unschedulable: bool,
    /// Deckies the worker runs for other fleets or hand-written shards.
    pub other_load: u32,
    /// The fleet's previous shard on this worker is still being torn down:
    /// place nothing here until it is gone (its name would collide).
    pub blocked: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    pub deckies: u32,
    pub node_selector: &'a BTreeMap<String, String>,
    pub strategy: SchedulingStrategy,
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    /// Worker → decky indices (sorted). Workers with nothing are absent.
    pub assignments: BTreeMap<String, BTreeSet<u32>>,
    /// Indices that fit nowhere (no eligible worker or no capacity left).
    pub unplaced: Vec<u32>,
    /// Indices that moved off a worker in this pass.
    pub moved: u32,
}

impl Candidate {
    fn selected(&self, selector: &BTreeMap<String, String>) -> bool {
        selector.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }

    /// May keep what it runs.
    fn may_keep(&self, req: &Request) -> bool {
        if !self.selected(req.node_selector) {
            return false;
        }
        match self.phase {
            Some(WorkerPhase::Active) => true,
            Some(WorkerPhase::Unreachable) => self.unreachable_for.is_none_or(|d| d < req.grace),
            _ => false,
        }
    }

    /// May receive new deckies.
    fn eligible(&self, req: &Request) -> bool {
        self.phase == Some(WorkerPhase::Active)
            && !self.unschedulable
            && !self.blocked
            && self.selected(req.node_selector)
    }

    fn room(&self, assigned: u32) -> u32 {
        self.capacity
            .map_or(u32::MAX, |c| c.saturating_sub(self.other_load + assigned))
    }
}

/// Computes the next placement from the current one.
pub fn place(
    req: &Request,
    workers: &[Candidate],
    current: &BTreeMap<String, BTreeSet<u32>>,
) -> Placement {
    let mut out = Placement::default();
    let by_name: BTreeMap<&str, &Candidate> =
        workers.iter().map(|w| (w.name.as_str(), w)).collect();
    let mut taken = BTreeSet::new();

    // Keep what may stay (below N, within capacity, each index once).
    for (worker, indices) in current {
        let Some(w) = by_name.get(worker.as_str()).filter(|w| w.may_keep(req)) else {
            out.moved += indices.iter().filter(|i| **i < req.deckies).count() as u32;
            continue;
        };
        let mut kept = BTreeSet::new();
        for &i in indices {
            if i >= req.deckies || taken.contains(&i) {
                continue;
            }
            if w.room(kept.len() as u32) == 0 {
                out.moved += 1;
                continue;
            }
            kept.insert(i);
            taken.insert(i);
        }
        if !kept.is_empty() {
            out.assignments.insert(worker.clone(), kept);
        }
    }

    // Place the rest on the eligible worker that is least loaded relative to
    // its weight (round-robin: every weight counts as 1); ties by name.
    let eligible: Vec<&Candidate> = workers.iter().filter(|w| w.eligible(req)).collect();
    for i in (0..req.deckies).filter(|i| !taken.contains(i)) {
        let pick = eligible
            .iter()
            .filter(|w| w.room(assigned(&out, &w.name)) > 0)
            .min_by(|a, b| {
                let score = |w: &Candidate| {
                    let weight = match req.strategy {
                        SchedulingStrategy::RoundRobin => 1,
                        SchedulingStrategy::Weighted => w.weight.max(1),
                    };
                    // (load + 1) / weight, compared exactly by cross-multiplying.
                    (
                        u64::from(assigned(&out, &w.name) + w.other_load) + 1,
                        u64::from(weight),
                    )
                };
                let (na, da) = score(a);
                let (nb, db) = score(b);
                (na * db).cmp(&(nb * da)).then_with(|| a.name.cmp(&b.name))
            });
        match pick {
            Some(w) => {
                out.assignments.entry(w.name.clone()).or_default().insert(i);
            }
            None => out.unplaced.push(i),
        }
    }
    out
}

fn assigned(p: &Placement, worker: &str) -> u32 {
    p.assignments.get(worker).map_or(0, |s| s.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, phase: WorkerPhase) -> Candidate {
        Candidate {
            name: name.into(),
            labels: BTreeMap::new(),
            phase: Some(phase),
            unreachable_for: None,
            capacity: None,
            weight: 1,
            unschedulable: false,
            other_load: 0,
            blocked: false,
        }
    }

    fn req(n: u32, sel: &BTreeMap<String, String>) -> Request<'_> {
        Request {
            deckies: n,
            node_selector: sel,
            strategy: SchedulingStrategy::RoundRobin,
            grace: Duration::from_secs(60),
        }
    }

    fn counts(p: &Placement) -> Vec<(String, usize)> {
        p.assignments
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }

    fn set(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn round_robin_splits_evenly() {
        let sel = BTreeMap::new();
        let ws = [w("a", WorkerPhase::Active), w("b", WorkerPhase::Active)];
        let p = place(&req(6, &sel), &ws, &BTreeMap::new());
        assert_eq!(counts(&p), vec![("a".into(), 3), ("b".into(), 3)]);
        assert!(p.unplaced.is_empty());
        assert_eq!(p.assignments["a"], set(&[0, 2, 4]));
    }

    #[test]
    fn placement_is_sticky_and_scale_up_fills_least_loaded() {
        let sel = BTreeMap::new();
        let ws = [
            w("a", WorkerPhase::Active),
            w("b", WorkerPhase::Active),
            w("c", WorkerPhase::Active),
        ];
        let cur = BTreeMap::from([
            ("a".to_string(), set(&[0, 1, 2])),
            ("b".to_string(), set(&[3])),
        ]);
        let p = place(&req(6, &sel), &ws, &cur);
        assert_eq!(p.assignments["a"], set(&[0, 1, 2]));
        assert_eq!(p.assignments["b"], set(&[3, 5]));
        assert_eq!(p.assignments["c"], set(&[4]));
        assert_eq!(p.moved, 0);
    }

    #[test]
    fn unreachable_keeps_within_grace_then_moves() {
        let sel = BTreeMap::new();
        let mut down = w("a", WorkerPhase::Unreachable);
        down.unreachable_for = Some(Duration::from_secs(10));
        let ws = [down.clone(), w("b", WorkerPhase::Active)];
        let cur = BTreeMap::from([
            ("a".to_string(), set(&[0, 1, 2])),
            ("b".to_string(), set(&[3, 4, 5])),
        ]);
        let p = place(&req(6, &sel), &ws, &cur);
        assert_eq!(p.assignments["a"], set(&[0, 1, 2]), "within grace: stays");

        down.unreachable_for = Some(Duration::from_secs(61));
        let ws = [down, w("b", WorkerPhase::Active)];
        let p = place(&req(6, &sel), &ws, &cur);
        assert_eq!(counts(&p), vec![("b".into(), 6)]);
        assert_eq!(p.moved, 3);
    }

    #[test]
    fn capacity_weights_and_selector() {
        let sel = BTreeMap::from([("zone".to_string(), "dmz".to_string())]);
        let mut a = w("a", WorkerPhase::Active);
        a.labels.insert("zone".into(), "dmz".into());
        a.weight = 3;
        let mut b = w("b", WorkerPhase::Active);
        b.labels.insert("zone".into(), "dmz".into());
        b.capacity = Some(2);
        b.other_load = 1;
        let c = w("c", WorkerPhase::Active); // not selected
        let mut r = req(8, &sel);
        r.strategy = SchedulingStrategy::Weighted;
        let p = place(&r, &[a, b, c], &BTreeMap::new());
        assert_eq!(counts(&p), vec![("a".into(), 7), ("b".into(), 1)]);

        let mut a = w("a", WorkerPhase::Active);
        a.capacity = Some(2);
        let p = place(&req(3, &BTreeMap::new()), &[a], &BTreeMap::new());
        assert_eq!(p.unplaced, vec![2]);
    }

    #[test]
    fn weighted_is_proportional() {
        let sel = BTreeMap::new();
        let mut a = w("a", WorkerPhase::Active);
        a.weight = 2;
        let b = w("b", WorkerPhase::Active);
        let mut r = req(9, &sel);
        r.strategy = SchedulingStrategy::Weighted;
        let p = place(&r, &[a, b], &BTreeMap::new());
        assert_eq!(counts(&p), vec![("a".into(), 6), ("b".into(), 3)]);
    }

    #[test]
    fn cordoned_keeps_blocked_and_pending_get_nothing_new() {
        let sel = BTreeMap::new();
        let mut a = w("a", WorkerPhase::Active);
        a.unschedulable = true;
        let mut b = w("b", WorkerPhase::Active);
        b.blocked = true;
        let c = w("c", WorkerPhase::Enrolled);
        let d = w("d", WorkerPhase::Active);
        let cur = BTreeMap::from([("a".to_string(), set(&[0]))]);
        let p = place(&req(3, &sel), &[a, b, c, d], &cur);
        assert_eq!(p.assignments["a"], set(&[0]));
        assert_eq!(p.assignments["d"], set(&[1, 2]));
        assert_eq!(p.assignments.len(), 2);
    }

    #[test]
    fn scale_down_drops_highest_and_duplicates_resolve() {
        let sel = BTreeMap::new();
        let ws = [w("a", WorkerPhase::Active), w("b", WorkerPhase::Active)];
        // After a crash, index 1 might be recorded on both: keep it once.
        let cur = BTreeMap::from([
            ("a".to_string(), set(&[0, 1, 4])),
            ("b".to_string(), set(&[1, 2, 3])),
        ]);
        let p = place(&req(3, &sel), &ws, &cur);
        assert_eq!(p.assignments["a"], set(&[0, 1]));
        assert_eq!(p.assignments["b"], set(&[2]));
    }
}
