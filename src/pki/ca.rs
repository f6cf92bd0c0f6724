//! The certificate authority on the master, and leaf issuance.
//!
//! One self-signed ECDSA P-256 CA per master, stored as `<home>/ca/ca.crt` + `<home>/ca/ca.key`.
//! pathlen 0: the CA signs leaves only, so a leaked leaf key can never mint certificates.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::pki::bundle::Bundle;
use crate::pki::error::{Error, Result};
use crate::pki::files;
use crate::pki::fingerprint::Fingerprint;
use crate::pki::identity::Role;
use crate::pki::leaf::{self, LeafOptions};

/// Directory of the CA below the master's home.
pub const CA_DIR: &str = "ca";
/// CA certificate file name (also the name inside worker bundles).
pub const CA_CERT_FILE: &str = "ca.crt";
/// CA private key file name.
pub const CA_KEY_FILE: &str = "ca.key";

/// CA lifetime: long, because rotating the CA means re-enrolling every worker.
const CA_VALIDITY: Duration = Duration::from_secs(3650 * 86_400);
/// Backdating, for clock skew between hosts.
const SKEW_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

/// The master's CA: certificate plus signing key.
pub struct CertificateAuthority {
    dir: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    fingerprint: Fingerprint,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    // Never print the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("dir", &self.dir)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// `<home>/ca`.
    pub fn dir_in(home: &Path) -> PathBuf {
        home.join(CA_DIR)
    }

    /// Loads the CA from `dir`, creating it if `dir` holds neither file.
    ///
    /// Idempotent: a second call loads the same CA. A half-present CA (one file missing) or a
    /// mismatched pair is an error and is never overwritten.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let cert = dir.join(CA_CERT_FILE);
        let key = dir.join(CA_KEY_FILE);
        match (exists(&cert)?, exists(&key)?) {
            (true, true) => Self::load(dir),
            (false, false) => match Self::create(dir) {
                // Another process created it concurrently: use theirs.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    Self::load(dir)
                }
                other => other,
            },
            (true, false) => Err(Error::CaIncomplete {
                dir: dir.to_owned(),
                present: cert,
                missing: key,
            }),
            (false, true) => Err(Error::CaIncomplete {
                dir: dir.to_owned(),
                present: key,
                missing: cert,
            }),
        }
    }

    /// Creates a new CA in `dir` (mode 0700); fails if either file already exists.
    pub fn create(dir: &Path) -> Result<Self> {
        files::ensure_private_dir(dir, true)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let now = SystemTime::now();
        let not_before = now.checked_sub(SKEW_ALLOWANCE).unwrap_or(now);
        let not_after = now
            .checked_add(CA_VALIDITY)
            .ok_or_else(|| Error::InvalidValidity {
                reason: "CA validity overflows the clock".into(),
            })?;

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        // A per-CA suffix so operators (and TLS hint lists) can tell two masters' CAs apart.
        let spki_hash = Sha256::digest(key.subject_public_key_info());
        let suffix: String = spki_hash[..4].iter().map(|b| format!("{b:02x}")).collect();
        dn.push(DnType::OrganizationName, "decnet");
        dn.push(DnType::CommonName, format!("decnet CA {suffix}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = leaf::to_offset(not_before)?;
        params.not_after = leaf::to_offset(not_after)?;
        let cert = params.self_signed(&key)?;

        // Key first: if we crash in between, the directory is "key without cert", which
        // load_or_create reports instead of silently replacing.
        files::write_new(
            &dir.join(CA_KEY_FILE),
            key.serialize_pem().as_bytes(),
            files::KEY_MODE,
        )?;
        files::write_new(
            &dir.join(CA_CERT_FILE),
            cert.pem().as_bytes(),
            files::PUBLIC_MODE,
        )?;
        tracing::info!(dir = %dir.display(), "created new decnet CA");

        let cert_der = cert.der().clone();
        Ok(CertificateAuthority {
            dir: dir.to_owned(),
            cert_pem: cert.pem(),
            fingerprint: Fingerprint::of_der(&cert_der),
            cert_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads an existing CA from `dir`, checking that key and certificate belong together.
    pub fn load(dir: &Path) -> Result<Self> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let invalid = |path: &Path, reason: String| Error::InvalidCa {
            path: path.to_owned(),
            reason,
        };

        let cert_bytes = files::read(&cert_path).map_err(|e| Error::io("read", &cert_path, e))?;
        let cert_pem = String::from_utf8(cert_bytes)
            .map_err(|_| invalid(&cert_path, "not a PEM text file".into()))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| invalid(&cert_path, format!("no PEM certificate: {e}")))?;

        files::warn_if_loose_key_mode(&key_path);
        let key_bytes = files::read(&key_path).map_err(|e| Error::io("read", &key_path, e))?;
        let key_pem = String::from_utf8(key_bytes)
            .map_err(|_| invalid(&key_path, "not a PEM text file".into()))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| invalid(&key_path, format!("not a usable private key: {e}")))?;

        {
            let (rest, x509) = x509_parser::parse_x509_certificate(&cert_der)
                .map_err(|e| invalid(&cert_path, format!("not an X.509 certificate: {e}")))?;
            if !rest.is_empty() {
                return Err(invalid(
                    &cert_path,
                    "trailing data after certificate".into(),
                ));
            }
            let is_ca = matches!(x509.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
            if !is_ca {
                return Err(invalid(&cert_path, "certificate is not a CA".into()));
            }
            // rcgen's issuer parsing panics on an empty RDN; reject that input here instead.
            if x509.subject().iter().any(|rdn| rdn.iter().next().is_none()) {
                return Err(invalid(
                    &cert_path,
                    "empty name component in subject".into(),
                ));
            }
            if x509.tbs_certificate.subject_pki.raw != key.subject_public_key_info().as_slice() {
                return Err(Error::CaKeyMismatch {
                    cert: cert_path,
                    key: key_path,
                });
            }
            if !x509.validity().is_valid() {
                return Err(invalid(
                    &cert_path,
                    format!(
                        "CA certificate is outside its validity ({} .. {}); a new CA is \
                         needed and every worker must be re-enrolled",
                        x509.validity().not_before,
                        x509.validity().not_after
                    ),
                ));
            }
        }

        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| invalid(&cert_path, format!("unusable as issuer: {e}")))?;
        Ok(CertificateAuthority {
            dir: dir.to_owned(),
            fingerprint: Fingerprint::of_der(&cert_der),
            cert_pem,
            cert_der,
            issuer,
        })
    }

    /// Issues a leaf for `role` with the given SANs (IP literals → IP SANs, other strings →
    /// DNS SANs). The result is a ready-to-write [`Bundle`] (CA cert + leaf + fresh key).
    pub fn issue<S: AsRef<str>>(
        &self,
        role: &Role,
        sans: &[S],
        options: &LeafOptions,
    ) -> Result<Bundle> {
        let (not_before, not_after) = options.window(SystemTime::now())?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, role.common_name());
        params.distinguished_name = dn;
        params.subject_alt_names = leaf::parse_sans(sans)?;
        // ExplicitNoCa: CA:FALSE, and it is what makes rcgen emit the leaf's SKI.
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Every decnet endpoint is both a TLS client and server depending on direction.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Bundle::from_parts(
            self.cert_pem.clone(),
            self.cert_der.clone(),
            cert.pem(),
            cert.der().clone(),
            key.serialize_pem(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            role.clone(),
        ))
    }

    /// Issues the agent leaf of worker `worker` (validates the name: `master` is refused).
    pub fn issue_agent<S: AsRef<str>>(
        &self,
        worker: &str,
        sans: &[S],
        options: &LeafOptions,
    ) -> Result<Bundle> {
        self.issue(&Role::agent(worker)?, sans, options)
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (PEM), as written to `ca.crt`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// SHA-256 fingerprint of the CA certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of `ca.crt`.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT_FILE)
    }
}

fn exists(path: &Path) -> Result<bool> {
    path.try_exists()
        .map_err(|e| Error::io("check for", path, e))
}
