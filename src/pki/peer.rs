//! The authenticated identity of the peer of a finished handshake.

use rustls::CommonState;
use rustls::pki_types::CertificateDer;

use crate::pki::error::{Error, Result};
use crate::pki::fingerprint::Fingerprint;
use crate::pki::identity::Role;

/// Who is on the other end of a connection, from its certificate.
///
/// Only meaningful for certificates from a completed handshake with the [`crate::pki::tls`]
/// configs, whose verifiers already checked chain, revocation and role; this type does not
/// re-verify anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The certificate's CN, verbatim.
    pub common_name: String,
    /// The role parsed from the CN.
    pub role: Role,
    /// SHA-256 fingerprint of the end-entity certificate.
    pub fingerprint: Fingerprint,
}

impl PeerIdentity {
    /// From a peer certificate chain (end entity first, as rustls returns it).
    pub fn from_certs(certs: &[CertificateDer<'_>]) -> Result<Self> {
        let end_entity = certs.first().ok_or(Error::NoPeerCertificate)?;
        Self::from_cert(end_entity)
    }

    /// From one end-entity certificate. Exactly one CN is required: several would make the
    /// identity ambiguous.
    pub fn from_cert(cert: &CertificateDer<'_>) -> Result<Self> {
        let parse_err = |reason: String| Error::CertificateParse { reason };
        let (_, x509) = x509_parser::parse_x509_certificate(cert)
            .map_err(|e| parse_err(format!("not an X.509 certificate: {e}")))?;
        let mut cns = x509.subject().iter_common_name();
        let cn = cns
            .next()
            .ok_or_else(|| parse_err("subject has no common name".into()))?;
        if cns.next().is_some() {
            return Err(parse_err("subject has more than one common name".into()));
        }
        let common_name = cn
            .as_str()
            .map_err(|e| parse_err(format!("common name is not a string: {e}")))?
            .to_owned();
        let role = Role::parse_common_name(&common_name)?;
        Ok(PeerIdentity {
            common_name,
            role,
            fingerprint: Fingerprint::of_der(cert),
        })
    }

    /// From a rustls connection after the handshake; pass a `&ServerConnection` or
    /// `&ClientConnection` (both deref to `CommonState`), e.g. `tls_stream.get_ref().1`.
    pub fn from_connection(conn: &CommonState) -> Result<Self> {
        Self::from_certs(conn.peer_certificates().ok_or(Error::NoPeerCertificate)?)
    }
}
