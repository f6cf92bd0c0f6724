//! The one place where decnet's rustls configs are built.
//!
//! Every config: ring provider only, TLS 1.2 and 1.3, trust anchored in our CA alone (no system
//! roots), mutual authentication, our policy verifiers, and no session resumption — a resumed
//! session would skip the verifiers, and with them revocation and role checks.

use std::sync::{Arc, OnceLock};

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::pki::bundle::Bundle;
use crate::pki::error::{Error, Result};
use crate::pki::revocation::RevocationList;
use crate::pki::verifier::{
    PolicyClientVerifier, PolicyServerVerifier, RolePolicy, ServerNameCheck,
};

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The ring crypto provider, explicitly: configs never depend on the process default.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A root store holding only `ca`.
pub fn root_store(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    Ok(Arc::new(roots))
}

/// Server config presenting `bundle`'s leaf and requiring a client certificate from the
/// bundle's CA whose role `policy` accepts and whose fingerprint `revoked` does not hold.
/// `revoked` is consulted live at every handshake.
pub fn server_config(
    bundle: &Bundle,
    policy: RolePolicy,
    revoked: RevocationList,
) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let roots = root_store(bundle.ca_der())?;
    let webpki = WebPkiClientVerifier::builder_with_provider(roots, provider.clone()).build()?;
    let verifier = Arc::new(PolicyClientVerifier::new(webpki, policy, revoked));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![bundle.cert_der().clone()],
            bundle.key_der().clone_key(),
        )?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Server config presenting `bundle`'s leaf WITHOUT asking for a client certificate. Only for
/// the enrollment endpoint: its clients are workers that have no certificate yet (they are
/// fetching it). They authenticate the server by pinning its public key instead, and the
/// endpoint itself is guarded by one-shot tokens. HTTP/1.1 only; no session resumption.
pub fn server_config_without_client_auth(bundle: &Bundle) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(
            vec![bundle.cert_der().clone()],
            bundle.key_der().clone_key(),
        )?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client config presenting `bundle`'s leaf and accepting only a server certificate from the
/// bundle's CA whose role `expect` accepts, not revoked, and (with
/// [`ServerNameCheck::Verify`]) carrying the name/IP we connect to in its SANs.
pub fn client_config(
    bundle: &Bundle,
    expect: RolePolicy,
    revoked: RevocationList,
    name_check: ServerNameCheck,
) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    let roots = root_store(bundle.ca_der())?;
    let webpki: Arc<WebPkiServerVerifier> =
        WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    let verifier = Arc::new(PolicyServerVerifier::new(
        webpki,
        roots,
        provider.clone(),
        name_check,
        expect,
        revoked,
    ));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(
            vec![bundle.cert_der().clone()],
            bundle.key_der().clone_key(),
        )?;
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Parses a host (DNS name or IP literal, no port) into a rustls `ServerName`.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).map_err(|_| Error::InvalidSan {
        san: host.chars().take(300).collect(),
        reason: "not a valid DNS name or IP address to connect to",
    })
}
