//! Resource limits that keep a decky alive under hostile load: a process-wide connection cap
//! (excess connections are closed at once, never queued) and per-connection timeouts and
//! sizes, so memory per connection is bounded and slow clients cannot hold slots forever.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once by the whole process (all services).
    pub max_connections: usize,
    /// Longest wait for the next complete line / packet from the client.
    pub idle_timeout: Duration,
    /// Longest lifetime of one connection.
    pub session_timeout: Duration,
    /// Longest accepted input line (longer lines are cut and the rest discarded).
    pub max_line: usize,
    /// Delay before an SSH authentication failure is answered (OpenSSH also delays failures).
    pub ssh_auth_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            idle_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(300),
            max_line: 4096,
            ssh_auth_delay: Duration::from_millis(300),
        }
    }
}

/// The process-wide connection cap.
#[derive(Clone, Debug)]
pub struct ConnectionGate {
    slots: Arc<Semaphore>,
}

impl ConnectionGate {
    pub fn new(max: usize) -> Self {
        ConnectionGate {
            slots: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// A slot for one connection, or `None` when all are taken (the caller closes it).
    pub fn try_enter(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_refuses_beyond_its_cap_and_frees_on_drop() {
        let g = ConnectionGate::new(2);
        let a = g.try_enter().unwrap();
        let _b = g.try_enter().unwrap();
        assert!(g.try_enter().is_none());
        drop(a);
        assert!(g.try_enter().is_some());
    }
}
