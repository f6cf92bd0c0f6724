//! [`AgentClient`]: the master's typed HTTPS + mTLS client for a worker agent.
//!
//! One TLS connection per request (the agent API is low-rate; no session resumption is
//! allowed anyway, so revocation and role checks run on every call).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::agent::{AgentStatus, DeployReport, DeployRequest, TeardownReport, TeardownRequest};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("agent {addr}: cannot connect: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("agent {addr}: TLS handshake failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("agent {addr}: HTTP: {source}")]
    Http { addr: String, source: hyper::Error },
    #[error("agent {addr}: {path} answered {status}: {message}")]
    Status {
        addr: String,
        path: String,
        status: StatusCode,
        message: String,
    },
    #[error("agent {addr}: {path}: unexpected body: {source}")]
    Body {
        addr: String,
        path: String,
        source: serde_json::Error,
    },
    #[error("agent {addr}: timed out after {0:?}", timeout)]
    Timeout { addr: String, timeout: Duration },
    #[error("agent address {0:?}: {1}")]
    Address(String, String),
}

/// A client for one agent.
#[derive(Clone)]
pub struct AgentClient {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    /// Per-request deadline (deploys of large shards take a while).
    pub timeout: Duration,
}

impl AgentClient {
    /// A client for the agent at `host:port`, with `tls` built by `pki::client_config` (the
    /// master bundle, expecting that worker's agent role).
    pub fn new(host: &str, port: u16, tls: Arc<rustls::ClientConfig>) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| ClientError::Address(host.to_owned(), e.to_string()))?;
        Ok(AgentClient {
            host: host.to_owned(),
            port,
            server_name,
            connector: TlsConnector::from(tls),
            timeout: Duration::from_secs(300),
        })
    }

    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<serde_json::Value, ClientError> {
        self.call(Method::GET, "/health", None::<&()>).await
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<AgentStatus, ClientError> {
        self.call(Method::GET, "/status", None::<&()>).await
    }

    /// `POST /deploy` of shard `name`.
    pub async fn deploy(&self, req: &DeployRequest) -> Result<DeployReport, ClientError> {
        self.call(Method::POST, "/deploy", Some(req)).await
    }

    /// `POST /teardown`.
    pub async fn teardown(&self, req: &TeardownRequest) -> Result<TeardownReport, ClientError> {
        self.call(Method::POST, "/teardown", Some(req)).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let addr = self.addr();
        match tokio::time::timeout(self.timeout, self.call_inner(method, path, body)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                addr,
                timeout: self.timeout,
            }),
        }
    }

    async fn call_inner<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let addr = self.addr();
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ClientError::Tls {
                addr: addr.clone(),
                source,
            })?;
        let http = |source| ClientError::Http {
            addr: addr.clone(),
            source,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(http)?;
        tokio::spawn(conn);
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("request types serialize"))
            .unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &addr)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .expect("valid request");
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(http)?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Status {
                addr,
                path: path.to_owned(),
                status,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Body {
            addr,
            path: path.to_owned(),
            source,
        })
    }
}
