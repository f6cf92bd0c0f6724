//! `decnet decky base`: holds a decky's network namespace (its IPs on every LAN) for the
//! service containers that join it. Does nothing but wait; exits promptly on SIGTERM/SIGINT
//! (it runs as PID 1, where the kernel ignores signals without a handler).

use tokio::signal::unix::{SignalKind, signal};

/// Waits until SIGTERM or SIGINT.
pub async fn run() -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
