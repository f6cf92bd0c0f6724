//! Identities: worker names and the roles encoded in certificate CNs.
//!
//! CN grammar (strict, total):
//! - `master`            → [`Role::Master`]
//! - `updater@<worker>`  → [`Role::Updater`]
//! - `<worker>`          → [`Role::Agent`]
//!
//! where `<worker>` is a lowercase DNS label that is not `master`. Reserving `master` as a worker
//! name is what makes it impossible for an agent certificate to carry the master role.

use std::fmt;
use std::str::FromStr;

use crate::pki::error::Error;

const MASTER_CN: &str = "master";
const UPDATER_PREFIX: &str = "updater@";

/// A worker's name: a lowercase DNS label (`[a-z0-9-]{1,63}`, no leading/trailing hyphen),
/// never `master`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerName(String);

impl WorkerName {
    /// Validates a worker name.
    pub fn new(name: &str) -> Result<Self, Error> {
        let bad = |reason| Error::InvalidWorkerName {
            name: name.chars().take(100).collect(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("must not be empty"));
        }
        if name.len() > 63 {
            return Err(bad("must be at most 63 characters (a DNS label)"));
        }
        // Lowercase only, so that `W1` and `w1` cannot be two distinct identities.
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(
                "may only contain lowercase letters a-z, digits and '-' (a DNS label)",
            ));
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(bad("must not start or end with '-'"));
        }
        if name == MASTER_CN {
            return Err(bad(
                "\"master\" is reserved for the master's own certificate; choose another name",
            ));
        }
        Ok(WorkerName(name.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl FromStr for WorkerName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        WorkerName::new(s)
    }
}

impl AsRef<str> for WorkerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The kind of a role, without the worker it belongs to; used by policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleKind {
    Master,
    Agent,
    Updater,
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoleKind::Master => "master",
            RoleKind::Agent => "agent",
            RoleKind::Updater => "updater",
        })
    }
}

/// Who a certificate speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The master (CN `master`).
    Master,
    /// The agent of a worker (CN = worker name).
    Agent { worker: WorkerName },
    /// The self-updater of a worker (CN `updater@<worker>`).
    Updater { worker: WorkerName },
}

impl Role {
    /// Convenience: the agent role of `worker`, validating the name.
    pub fn agent(worker: &str) -> Result<Self, Error> {
        Ok(Role::Agent {
            worker: WorkerName::new(worker)?,
        })
    }

    /// Convenience: the updater role of `worker`, validating the name.
    pub fn updater(worker: &str) -> Result<Self, Error> {
        Ok(Role::Updater {
            worker: WorkerName::new(worker)?,
        })
    }

    /// The certificate CN that encodes this role.
    pub fn common_name(&self) -> String {
        match self {
            Role::Master => MASTER_CN.to_owned(),
            Role::Agent { worker } => worker.0.clone(),
            Role::Updater { worker } => format!("{UPDATER_PREFIX}{}", worker.0),
        }
    }

    /// Parses a certificate CN back into a role. Total: any input yields `Ok` or `Err`.
    pub fn parse_common_name(cn: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::InvalidCommonName {
            cn: cn.chars().take(100).collect(),
            reason,
        };
        if cn == MASTER_CN {
            return Ok(Role::Master);
        }
        if let Some(worker) = cn.strip_prefix(UPDATER_PREFIX) {
            return WorkerName::new(worker)
                .map(|worker| Role::Updater { worker })
                .map_err(|e| bad(format!("bad worker in updater identity: {e}")));
        }
        WorkerName::new(cn)
            .map(|worker| Role::Agent { worker })
            .map_err(|e| {
                bad(format!(
                    "expected \"master\", \"updater@<worker>\" or a worker name ({e})"
                ))
            })
    }

    /// The role's kind.
    pub fn kind(&self) -> RoleKind {
        match self {
            Role::Master => RoleKind::Master,
            Role::Agent { .. } => RoleKind::Agent,
            Role::Updater { .. } => RoleKind::Updater,
        }
    }

    /// The worker this role belongs to (`None` for the master).
    pub fn worker(&self) -> Option<&WorkerName> {
        match self {
            Role::Master => None,
            Role::Agent { worker } | Role::Updater { worker } => Some(worker),
        }
    }
}

/// Displays the CN form.
impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.common_name())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Role::parse_common_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> WorkerName {
        WorkerName::new(s).unwrap()
    }

    #[test]
    fn parse_table() {
        let long_ok = "a".repeat(63);
        let long_bad = "a".repeat(64);
        let ok: Vec<(&str, Role)> = vec![
            ("master", Role::Master),
            ("w1", Role::Agent { worker: w("w1") }),
            (
                "edge-01",
                Role::Agent {
                    worker: w("edge-01"),
                },
            ),
            ("0", Role::Agent { worker: w("0") }),
            (
                "updater",
                Role::Agent {
                    worker: w("updater"),
                },
            ),
            ("updater@w1", Role::Updater { worker: w("w1") }),
            (
                &long_ok,
                Role::Agent {
                    worker: w(&long_ok),
                },
            ),
        ];
        for (cn, role) in ok {
            let parsed = Role::parse_common_name(cn).unwrap();
            assert_eq!(parsed, role, "{cn}");
            assert_eq!(parsed.common_name(), cn, "round trip {cn}");
        }

        let bad = [
            "",
            "Master",
            "MASTER",
            " master",
            "master ",
            "master\0",
            "W1",
            "-w1",
            "w1-",
            "w_1",
            "w.1",
            "w1.example.com",
            "updater@",
            "updater@master",
            "updater@W1",
            "updater@w1@w2",
            "updater@updater@w1",
            "agent@w1",
            "@w1",
            "decnet CA 1234",
            "é",
            "wé",
            "\u{202e}w1",
            "w1\n",
            &long_bad,
        ];
        for cn in bad {
            assert!(
                matches!(
                    Role::parse_common_name(cn),
                    Err(Error::InvalidCommonName { .. })
                ),
                "{cn:?} must be rejected"
            );
        }
    }

    #[test]
    fn worker_named_master_is_impossible() {
        let err = WorkerName::new("master").unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(Role::agent("master").is_err());
        assert!(Role::updater("master").is_err());
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes() {
        // Cheap deterministic fuzz over byte strings interpreted lossily as UTF-8.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xff) as u8
                })
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            let _ = Role::parse_common_name(&s);
            let _ = Role::parse_common_name(&format!("updater@{s}"));
        }
    }
}
