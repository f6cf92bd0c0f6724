//! Why a connection ended abnormally. None of these ever stops a service: the accept loop
//! logs them (tracing, stderr) and moves on.

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("client idle for longer than the idle timeout")]
    IdleTimeout,
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    #[error("ssh host key: {0}")]
    HostKey(String),
}

/// How a connection ended, for the `disconnect` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    ClientClosed,
    ServerClosed,
    IdleTimeout,
    SessionTimeout,
    Error,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ClientClosed => "client_closed",
            EndReason::ServerClosed => "server_closed",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::SessionTimeout => "session_timeout",
            EndReason::Error => "error",
        }
    }
}
