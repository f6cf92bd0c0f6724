//! The live set of revoked certificate fingerprints.
//!
//! The verifiers hold a clone of the same [`RevocationList`] handle and consult it on every
//! handshake, so `revoke` takes effect for the next handshake of a running server without
//! rebuilding any TLS config. Persistence is the store's job; `load`/`save` to a text file are a
//! fallback for hosts without the store (the agent side).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::pki::error::{Error, Result};
use crate::pki::files;
use crate::pki::fingerprint::Fingerprint;

/// Cheaply clonable shared handle to a set of revoked fingerprints.
#[derive(Clone, Default)]
pub struct RevocationList {
    inner: Arc<RwLock<HashSet<Fingerprint>>>,
}

impl RevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// A list holding `fingerprints`.
    pub fn from_fingerprints(fingerprints: impl IntoIterator<Item = Fingerprint>) -> Self {
        let list = Self::new();
        list.replace_all(fingerprints);
        list
    }

    // A panic while holding the lock cannot leave a HashSet half-updated in a way that matters
    // here, so poisoning is ignored rather than turned into a second panic.
    fn read(&self) -> RwLockReadGuard<'_, HashSet<Fingerprint>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashSet<Fingerprint>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Revokes `fingerprint`; returns `false` if it was already revoked.
    pub fn revoke(&self, fingerprint: Fingerprint) -> bool {
        self.write().insert(fingerprint)
    }

    /// Lifts a revocation (e.g. to undo a mistaken decommission); returns whether it was present.
    pub fn unrevoke(&self, fingerprint: &Fingerprint) -> bool {
        self.write().remove(fingerprint)
    }

    /// Whether `fingerprint` is revoked.
    pub fn is_revoked(&self, fingerprint: &Fingerprint) -> bool {
        self.read().contains(fingerprint)
    }

    /// Atomically replaces the whole set (e.g. after reloading it from the store).
    pub fn replace_all(&self, fingerprints: impl IntoIterator<Item = Fingerprint>) {
        let fresh: HashSet<Fingerprint> = fingerprints.into_iter().collect();
        *self.write() = fresh;
    }

    /// Number of revoked fingerprints.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The revoked fingerprints, sorted.
    pub fn snapshot(&self) -> Vec<Fingerprint> {
        let mut v: Vec<Fingerprint> = self.read().iter().copied().collect();
        v.sort();
        v
    }

    /// Reads a file with one fingerprint per line (`#` comments and blank lines ignored).
    pub fn load(path: &Path) -> Result<Self> {
        let list = Self::new();
        list.reload(path)?;
        Ok(list)
    }

    /// Replaces this (shared) list's contents from `path`; on error the list is unchanged.
    pub fn reload(&self, path: &Path) -> Result<()> {
        let bytes = files::read(path).map_err(|e| Error::io("read", path, e))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut set = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fp = line
                .parse::<Fingerprint>()
                .map_err(|e| Error::RevocationListParse {
                    path: path.to_owned(),
                    line: i + 1,
                    reason: e.to_string(),
                })?;
            set.push(fp);
        }
        self.replace_all(set);
        Ok(())
    }

    /// Atomically writes the list, one lowercase hex fingerprint per line, sorted.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = String::from("# decnet revoked certificate fingerprints (SHA-256)\n");
        for fp in self.snapshot() {
            text.push_str(&fp.to_string());
            text.push('\n');
        }
        files::write_atomic(path, text.as_bytes(), files::PUBLIC_MODE)
    }
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationList")
            .field("revoked", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_handle_and_file_round_trip() {
        let a = Fingerprint::of_der(b"a");
        let b = Fingerprint::of_der(b"b");
        let list = RevocationList::new();
        let other = list.clone();
        assert!(list.revoke(a));
        assert!(!list.revoke(a));
        assert!(other.is_revoked(&a), "clones share state");
        other.replace_all([b]);
        assert!(!list.is_revoked(&a) && list.is_revoked(&b));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.txt");
        list.revoke(a);
        list.save(&path).unwrap();
        let loaded = RevocationList::load(&path).unwrap();
        assert_eq!(loaded.snapshot(), list.snapshot());

        std::fs::write(&path, format!("# c\n\n{a}\nnot-a-fingerprint\n")).unwrap();
        let err = list.reload(&path).unwrap_err();
        assert!(
            matches!(err, Error::RevocationListParse { line: 4, .. }),
            "{err}"
        );
        assert_eq!(list.len(), 2, "failed reload leaves the list unchanged");
    }
}
