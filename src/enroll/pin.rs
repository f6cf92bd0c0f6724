//! curl's `--pinnedpubkey sha256//…` value for the master certificate.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// Base64 (standard alphabet, padded: what curl expects) of the SHA-256 of the certificate's
/// DER SubjectPublicKeyInfo. Pinning the key rather than the certificate keeps the pin valid
/// across a reissue of the master leaf with the same key, and is what curl can check.
pub fn spki_sha256_base64(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| format!("cannot parse the master certificate: {e}"))?;
    Ok(STANDARD.encode(Sha256::digest(cert.tbs_certificate.subject_pki.raw)))
}
