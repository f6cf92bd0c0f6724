//! Credential bundles: CA certificate + own leaf + own key, as files.
//!
//! A worker bundle is `ca.crt`, `worker.crt`, `worker.key` (0600) in one directory. The master's
//! own leaf is `<home>/master.crt` + `<home>/master.key`, checked against `<home>/ca/ca.crt`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, RootCertStore};

use crate::pki::ca::{CA_CERT_FILE, CertificateAuthority};
use crate::pki::error::{BundleProblem, Error, MASTER_LEAF_HINT, REENROLL_HINT, Result};
use crate::pki::files;
use crate::pki::fingerprint::Fingerprint;
use crate::pki::identity::Role;
use crate::pki::leaf::LeafOptions;
use crate::pki::peer::PeerIdentity;
use crate::pki::tls;

/// Worker bundle: the leaf certificate file name.
pub const WORKER_CERT_FILE: &str = "worker.crt";
/// Worker bundle: the private key file name.
pub const WORKER_KEY_FILE: &str = "worker.key";
/// The master's own leaf certificate, in the master's home.
pub const MASTER_CERT_FILE: &str = "master.crt";
/// The master's own private key, in the master's home.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The master reissues its own leaf when it gets this close to expiry.
const MASTER_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// A CA certificate, a leaf certificate issued by it, and the leaf's private key.
pub struct Bundle {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_der: PrivateKeyDer<'static>,
    role: Role,
    fingerprint: Fingerprint,
}

impl Clone for Bundle {
    fn clone(&self) -> Self {
        Bundle {
            ca_pem: self.ca_pem.clone(),
            ca_der: self.ca_der.clone(),
            cert_pem: self.cert_pem.clone(),
            cert_der: self.cert_der.clone(),
            key_pem: self.key_pem.clone(),
            key_der: self.key_der.clone_key(),
            role: self.role.clone(),
            fingerprint: self.fingerprint,
        }
    }
}

impl fmt::Debug for Bundle {
    // Never print the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("role", &self.role)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Bundle {
    pub(crate) fn from_parts(
        ca_pem: String,
        ca_der: CertificateDer<'static>,
        cert_pem: String,
        cert_der: CertificateDer<'static>,
        key_pem: String,
        key_der: PrivateKeyDer<'static>,
        role: Role,
    ) -> Self {
        let fingerprint = Fingerprint::of_der(&cert_der);
        Bundle {
            ca_pem,
            ca_der,
            cert_pem,
            cert_der,
            key_pem,
            key_der,
            role,
            fingerprint,
        }
    }

    /// Writes `ca.crt`, `worker.crt` (0644) and `worker.key` (0600) into `dir`, creating it
    /// (0700) if needed. Each file is replaced atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        files::ensure_private_dir(dir, false)?;
        self.write_files(
            &dir.join(CA_CERT_FILE),
            &dir.join(WORKER_CERT_FILE),
            &dir.join(WORKER_KEY_FILE),
        )
    }

    /// Loads and fully checks a worker bundle from `dir`: every file present and parseable,
    /// key matching the certificate, certificate chaining to `ca.crt` and valid now, CN a decnet
    /// identity. Errors name the offending file and say how to re-enroll.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_files(
            &dir.join(CA_CERT_FILE),
            &dir.join(WORKER_CERT_FILE),
            &dir.join(WORKER_KEY_FILE),
            REENROLL_HINT,
        )
    }

    /// Writes the three files to explicit paths (key 0600, certificates 0644).
    pub fn write_files(&self, ca_path: &Path, cert_path: &Path, key_path: &Path) -> Result<()> {
        self.write_leaf_files(cert_path, key_path)?;
        files::write_atomic(ca_path, self.ca_pem.as_bytes(), files::PUBLIC_MODE)
    }

    fn write_leaf_files(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        // Key first so a crash never leaves a new certificate next to an old key.
        files::write_atomic(key_path, self.key_pem.as_bytes(), files::KEY_MODE)?;
        files::write_atomic(cert_path, self.cert_pem.as_bytes(), files::PUBLIC_MODE)
    }

    /// Loads and checks a bundle from explicit paths; `hint` is appended to every error.
    pub fn load_files(
        ca_path: &Path,
        cert_path: &Path,
        key_path: &Path,
        hint: &'static str,
    ) -> Result<Self> {
        let fail = |path: &Path, problem| Error::bundle(path, problem, hint);
        let read_text = |path: &Path| -> Result<String> {
            let bytes = files::read(path).map_err(|e| {
                let problem = if e.kind() == std::io::ErrorKind::NotFound {
                    BundleProblem::Missing
                } else {
                    BundleProblem::Unreadable(e)
                };
                fail(path, problem)
            })?;
            String::from_utf8(bytes).map_err(|_| {
                fail(
                    path,
                    BundleProblem::Unparsable {
                        what: "PEM file",
                        reason: "not UTF-8 text".into(),
                    },
                )
            })
        };
        let unparsable = |path: &Path, what, reason: String| {
            fail(path, BundleProblem::Unparsable { what, reason })
        };

        let ca_pem = read_text(ca_path)?;
        let cert_pem = read_text(cert_path)?;
        files::warn_if_loose_key_mode(key_path);
        let key_pem = read_text(key_path)?;

        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| unparsable(ca_path, "CA certificate", e.to_string()))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| unparsable(cert_path, "certificate", e.to_string()))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| unparsable(key_path, "private key", e.to_string()))?;

        let provider = tls::provider();
        let signing_key = provider
            .key_provider
            .load_private_key(key_der.clone_key())
            .map_err(|e| unparsable(key_path, "private key", e.to_string()))?;
        let parsed = ParsedCertificate::try_from(&cert_der)
            .map_err(|e| unparsable(cert_path, "certificate", e.to_string()))?;
        CertifiedKey::new(vec![cert_der.clone()], signing_key)
            .keys_match()
            .map_err(|_| {
                fail(
                    key_path,
                    BundleProblem::KeyMismatch {
                        cert: cert_path.to_owned(),
                    },
                )
            })?;

        let mut roots = RootCertStore::empty();
        roots
            .add(ca_der.clone())
            .map_err(|e| unparsable(ca_path, "CA certificate", e.to_string()))?;
        // Chain + validity + signature check with webpki, exactly as a peer would do it.
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            &[],
            UnixTime::now(),
            provider.signature_verification_algorithms.all,
        )
        .map_err(|e| {
            let time_problem = matches!(
                e,
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired
                        | CertificateError::ExpiredContext { .. }
                        | CertificateError::NotValidYet
                        | CertificateError::NotValidYetContext { .. }
                )
            );
            let problem = if time_problem {
                BundleProblem::NotValidNow {
                    reason: e.to_string(),
                }
            } else {
                BundleProblem::NotSignedByCa {
                    ca: ca_path.to_owned(),
                    reason: e.to_string(),
                }
            };
            fail(cert_path, problem)
        })?;

        let peer = PeerIdentity::from_cert(&cert_der).map_err(|e| {
            fail(
                cert_path,
                BundleProblem::BadIdentity {
                    reason: e.to_string(),
                },
            )
        })?;

        Ok(Bundle {
            ca_pem,
            ca_der,
            cert_pem,
            cert_der,
            key_pem,
            key_der,
            role: peer.role,
            fingerprint: peer.fingerprint,
        })
    }

    /// The role encoded in the leaf's CN.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// SHA-256 fingerprint of the leaf (what the store records and the revocation list holds).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The leaf certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The leaf private key (DER, PKCS#8).
    pub fn key_der(&self) -> &PrivateKeyDer<'static> {
        &self.key_der
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The leaf certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The leaf private key (PEM, PKCS#8). Secret.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Seconds until the leaf expires (0 if expired or unparseable).
    pub fn expires_in(&self) -> Duration {
        x509_parser::parse_x509_certificate(&self.cert_der)
            .ok()
            .and_then(|(_, c)| c.validity().time_to_expiration())
            .and_then(|d| u64::try_from(d.whole_seconds()).ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::ZERO)
    }
}

/// Loads the master's own leaf (`<home>/master.crt`, `<home>/master.key`), issuing it from `ca`
/// when absent, expired or within 30 days of expiry. `sans` are only used when issuing (the
/// master's addresses, for agents that verify the log listener's hostname).
///
/// A present but broken leaf (mismatched key, foreign CA, wrong role) is an error, not silently
/// replaced, because it points at tampering or a mixed-up home directory.
pub fn master_bundle<S: AsRef<str>>(
    home: &Path,
    ca: &CertificateAuthority,
    sans: &[S],
) -> Result<Bundle> {
    let cert_path = home.join(MASTER_CERT_FILE);
    let key_path = home.join(MASTER_KEY_FILE);
    let ca_path = ca.cert_path();
    let present = |p: &Path| {
        p.try_exists()
            .map_err(|e| Error::io("check for", p.to_path_buf(), e))
    };
    let issue = || -> Result<Bundle> {
        files::ensure_private_dir(home, false)?;
        let bundle = ca.issue(&Role::Master, sans, &LeafOptions::default())?;
        // ca.crt is the CA's own file: never rewritten from here.
        bundle.write_leaf_files(&cert_path, &key_path)?;
        tracing::info!(path = %cert_path.display(), fingerprint = %bundle.fingerprint(), "issued master certificate");
        Ok(bundle)
    };

    match (present(&cert_path)?, present(&key_path)?) {
        (false, false) => issue(),
        (true, true) => match Bundle::load_files(&ca_path, &cert_path, &key_path, MASTER_LEAF_HINT)
        {
            Ok(bundle) if bundle.role != Role::Master => Err(Error::bundle(
                &cert_path,
                BundleProblem::BadIdentity {
                    reason: format!("CN is {:?}, expected \"master\"", bundle.role.common_name()),
                },
                MASTER_LEAF_HINT,
            )),
            Ok(bundle) if bundle.expires_in() < MASTER_RENEW_BEFORE => issue(),
            Ok(bundle) => Ok(bundle),
            Err(Error::Bundle {
                problem: BundleProblem::NotValidNow { .. },
                ..
            }) => issue(),
            Err(e) => Err(e),
        },
        (true, false) => Err(Error::bundle(
            &key_path,
            BundleProblem::Missing,
            MASTER_LEAF_HINT,
        )),
        (false, true) => Err(Error::bundle(
            &cert_path,
            BundleProblem::Missing,
            MASTER_LEAF_HINT,
        )),
    }
}

/// Paths of a worker bundle in `dir`: (`ca.crt`, `worker.crt`, `worker.key`).
pub fn worker_paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join(CA_CERT_FILE),
        dir.join(WORKER_CERT_FILE),
        dir.join(WORKER_KEY_FILE),
    )
}
