//! The master's enrollment endpoint: `GET /enroll/<token>.sh` and
//! `GET /enroll/<token>/bundle.tar`, HTTPS without client certificates (the caller is a
//! worker that has none yet). Every refusal is a bare 404, whatever the reason (unknown,
//! replayed, expired, malformed, wrong source address), so the endpoint tells a prober nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::EnrollError;
use super::pin::spki_sha256_base64;
use super::script::{ScriptParams, checked_host_header, render_script};
use super::tarball::bundle_tar;
use super::token::Token;
use super::tokens::TokenTable;
use super::workers::{
    ENROLLED_CONDITION, FINGERPRINT_ANNOTATION, enrollment_status, record_event, update_status,
};
use crate::api::{Worker, WorkerPhase, set_condition};
use crate::master::MasterTls;
use crate::pki::Fingerprint;
use crate::store::Api;

/// How often expired tokens lose their key material even when nobody calls the endpoint.
const PURGE_EVERY: Duration = Duration::from_secs(15);

struct Ctx {
    tokens: TokenTable,
    workers: Api<Worker>,
    /// curl pin of our own certificate, embedded in the script for the bundle download.
    pin: String,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

fn internal(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "enrollment endpoint: {what} failed");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

fn source_ip(peer: SocketAddr) -> String {
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    peer.ip().to_canonical().to_string()
}

/// The router (TLS is added by [`serve`]). Requests must carry `ConnectInfo<SocketAddr>`.
fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/enroll/{file}", get(script))
        .route("/enroll/{token}/bundle.tar", get(bundle))
        .fallback(|| async { not_found() })
        .with_state(ctx)
}

async fn script(
    State(ctx): State<Arc<Ctx>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    file: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(token) = file
        .ok()
        .and_then(|Path(f)| f.strip_suffix(".sh").and_then(Token::parse))
    else {
        return not_found();
    };
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(checked_host_header)
    else {
        return not_found();
    };
    purge_expired(&ctx).await;
    let source = source_ip(peer);
    let worker = match ctx.tokens.claim_script(&token.hash(), &source, now()).await {
        Ok(Some(w)) => w,
        Ok(None) => {
            tracing::warn!(%source, "enrollment script refused: unknown, used or expired token");
            return not_found();
        }
        Err(e) => return internal("claiming a token", &e),
    };
    let updated = update_status(&ctx.workers, &worker, |_, status| {
        status.source_address = Some(source.clone());
        true
    })
    .await;
    let w = match updated {
        Ok(Some(w)) => w,
        Ok(None) => {
            tracing::warn!(worker = %worker, "enrollment script refused: the Worker no longer exists");
            return not_found();
        }
        Err(e) => return internal("recording the source address", &e),
    };
    record_event(
        &ctx.workers,
        &w,
        "Normal",
        "BootstrapScriptFetched",
        &format!("enrollment script fetched from {source}"),
    )
    .await;
    tracing::info!(worker = %worker, %source, "enrollment script served");
    let body = render_script(&ScriptParams {
        worker: &worker,
        host,
        token: token.expose(),
        pin: &ctx.pin,
        address: &w.spec.address,
        agent_port: w.spec.agent_port,
    });
    respond(body.into_bytes(), "text/x-shellscript; charset=utf-8")
}

async fn bundle(
    State(ctx): State<Arc<Ctx>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(token) = token.ok().and_then(|Path(t)| Token::parse(&t)) else {
        return not_found();
    };
    purge_expired(&ctx).await;
    let source = source_ip(peer);
    let now = now();
    let claimed = match ctx.tokens.claim_bundle(&token.hash(), &source, now).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::warn!(%source, "enrollment bundle refused: unknown, used, expired token or other source");
            return not_found();
        }
        Err(e) => return internal("claiming a bundle", &e),
    };
    let worker = claimed.worker.clone();
    let Ok(fp) = claimed.fingerprint.parse::<Fingerprint>() else {
        return internal("reading the token's fingerprint", &claimed.fingerprint);
    };
    // Serve only to the Worker this certificate was issued for: after a decommission and
    // re-create under the same name, a stale token must not hand out the old certificate.
    let message = format!("bundle fetched from {source}; certificate {fp} delivered");
    let updated = update_status(&ctx.workers, &worker, |w, status| {
        let issued_here = w
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(FINGERPRINT_ANNOTATION))
            == Some(&claimed.fingerprint);
        if !issued_here {
            return false;
        }
        let mut next = enrollment_status(
            Some(status),
            WorkerPhase::Enrolled,
            &fp,
            w.metadata.generation,
            "BundleFetched",
            &message,
            jiff::Timestamp::now(),
        );
        next.source_address = Some(source.clone());
        *status = next;
        true
    })
    .await;
    let w = match updated {
        Ok(Some(w))
            if w.status
                .as_ref()
                .and_then(|s| s.cert_fingerprint.as_deref())
                == Some(claimed.fingerprint.as_str())
                && w.status.as_ref().and_then(|s| s.phase) == Some(WorkerPhase::Enrolled) =>
        {
            w
        }
        Ok(_) => {
            tracing::warn!(worker = %worker, "enrollment bundle refused: the Worker is gone or holds another certificate");
            return not_found();
        }
        // The token is spent and the key forgotten either way; failing here lets the
        // operator see the error and re-enroll rather than run a worker the store does not know.
        Err(e) => return internal("marking the Worker enrolled", &e),
    };
    let tar = match bundle_tar(&claimed.pems, u64::try_from(now).unwrap_or(0)) {
        Ok(t) => t,
        Err(e) => return internal("building the bundle", &e),
    };
    record_event(&ctx.workers, &w, "Normal", "Enrolled", &message).await;
    tracing::info!(worker = %worker, %source, fingerprint = %fp, "enrollment bundle served; key material forgotten");
    respond(tar, "application/x-tar")
}

fn respond(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Forgets the key material of expired tokens and tells their Workers.
async fn purge_expired(ctx: &Ctx) {
    let workers = match ctx.tokens.purge_expired(now()).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "purging expired enrollment tokens failed");
            return;
        }
    };
    for name in workers {
        let message = format!(
            "the one-shot enrollment token expired unused; its key was deleted. Re-enroll: \
             decnet swarm decommission --name {name}, then decnet swarm enroll again"
        );
        let r = update_status(&ctx.workers, &name, |w, status| {
            if status.phase != Some(WorkerPhase::Pending) {
                return false;
            }
            set_condition(
                &mut status.conditions,
                ENROLLED_CONDITION,
                false,
                "TokenExpired",
                message.clone(),
                w.metadata.generation,
                jiff::Timestamp::now(),
            );
            true
        })
        .await;
        match r {
            Ok(Some(w)) => {
                record_event(&ctx.workers, &w, "Warning", "TokenExpired", &message).await
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(worker = %name, error = %e, "marking an expired token failed"),
        }
        tracing::info!(worker = %name, "enrollment token expired; key material deleted");
    }
}

/// See [`super::serve`].
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    master: MasterTls,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EnrollError> {
    let tls = crate::pki::server_config_without_client_auth(&master.bundle)?;
    let pin = spki_sha256_base64(master.bundle.cert_der()).map_err(EnrollError::Invalid)?;
    let ctx = Arc::new(Ctx {
        tokens: TokenTable::new(master.store.pool().clone()),
        workers: Api::new(master.store.clone()),
        pin,
    });
    let addr = listener.local_addr().map_err(EnrollError::Io)?;

    let purger = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            let mut tick = tokio::time::interval(PURGE_EVERY);
            loop {
                tick.tick().await;
                purge_expired(&ctx).await;
            }
        }
    });
    let handle = axum_server::Handle::<SocketAddr>::new();
    tokio::spawn({
        let handle = handle.clone();
        async move {
            shutdown.await;
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        }
    });

    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .handshake_timeout(Duration::from_secs(10));
    let mut server = axum_server::Server::<SocketAddr>::from_listener(listener)
        .acceptor(acceptor)
        .handle(handle);
    // A client that never finishes its request headers does not hold a connection forever.
    server
        .http_builder()
        .http1()
        .header_read_timeout(Duration::from_secs(10));
    tracing::info!(%addr, "enrollment endpoint listening (HTTPS, one-shot tokens)");
    let served = server
        .serve(router(ctx).into_make_service_with_connect_info::<SocketAddr>())
        .await;
    purger.abort();
    served.map_err(EnrollError::Io)
}
