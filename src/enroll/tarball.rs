//! The bundle as served to a bootstrapping worker: an in-memory tar of `ca.crt`, `worker.crt`
//! and `worker.key` (mode 0600), the same three files `Bundle::write` produces.

use crate::pki::bundle::{WORKER_CERT_FILE, WORKER_KEY_FILE};
use crate::pki::ca::CA_CERT_FILE;

/// The PEM texts of a worker bundle.
pub struct BundlePems {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Builds the tar (ustar/GNU headers, owner 0:0, fixed `mtime`).
pub fn bundle_tar(pems: &BundlePems, mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, text, mode) in [
        (CA_CERT_FILE, &pems.ca_pem, 0o644),
        (WORKER_CERT_FILE, &pems.cert_pem, 0o644),
        (WORKER_KEY_FILE, &pems.key_pem, 0o600),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_path(name)?;
        header.set_size(text.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_cksum();
        builder.append(&header, text.as_bytes())?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn holds_the_three_files_with_their_modes() {
        let pems = BundlePems {
            ca_pem: "CA".into(),
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        };
        let bytes = bundle_tar(&pems, 1_700_000_000).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut e = entry.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mode = e.header().mode().unwrap();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            seen.push((path, mode, text));
        }
        assert_eq!(
            seen,
            vec![
                ("ca.crt".to_string(), 0o644, "CA".to_string()),
                ("worker.crt".to_string(), 0o644, "CERT".to_string()),
                ("worker.key".to_string(), 0o600, "KEY".to_string()),
            ]
        );
    }
}
