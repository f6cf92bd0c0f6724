//! Worker credentials: the agent certificate a worker gets at enrollment.

use crate::api::WorkerSpec;
use crate::pki::{Bundle, CertificateAuthority, LeafOptions};

/// The SANs of a worker's certificate: its address (what the master dials
/// and verifies) plus any extra names from the spec.
pub fn worker_sans(spec: &WorkerSpec) -> Vec<String> {
    let mut sans = vec![spec.address.clone()];
    for s in &spec.sans {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    sans
}

/// Issues worker `name`'s agent bundle (CN = name, role agent). CPU-bound
/// (key generation): call from `spawn_blocking` in async code.
pub fn issue_worker_bundle(
    ca: &CertificateAuthority,
    name: &str,
    spec: &WorkerSpec,
    validity_days: u32,
) -> Result<Bundle, crate::pki::Error> {
    ca.issue_agent(
        name,
        &worker_sans(spec),
        &LeafOptions::with_validity_days(u64::from(validity_days)),
    )
}
