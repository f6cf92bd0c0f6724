//! A stream wrapper that can be failed from outside. Protocol libraries that run a connection
//! on their own task (russh does) keep going when our task gives up on it; killing the
//! wrapper makes their next read or write fail, so they drop the socket and the connection
//! cannot outlive its slot.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Default)]
struct Shared {
    killed: AtomicBool,
    reader: AtomicWaker,
}

/// Fails the [`Killable`] streams made from it.
#[derive(Clone, Default)]
pub struct KillSwitch(Arc<Shared>);

impl KillSwitch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn wrap<S>(&self, inner: S) -> Killable<S> {
        Killable {
            inner,
            shared: self.0.clone(),
        }
    }

    /// Every later (and the pending) read or write of the wrapped stream fails.
    pub fn kill(&self) {
        self.0.killed.store(true, Ordering::Release);
        self.0.reader.wake();
    }
}

pub struct Killable<S> {
    inner: S,
    shared: Arc<Shared>,
}

fn killed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection killed")
}

impl<S> Killable<S> {
    fn is_killed(&self) -> bool {
        self.shared.killed.load(Ordering::Acquire)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        self.shared.reader.register(cx.waker());
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        // A kill between the first check and the registration must not be missed.
        if r.is_pending() && self.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, b)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_pending_read_fails_when_killed() {
        let (_w, r) = tokio::io::duplex(64);
        let switch = KillSwitch::new();
        let mut k = switch.wrap(r);
        let reader = tokio::spawn(async move {
            let mut b = [0u8; 8];
            k.read(&mut b).await
        });
        tokio::task::yield_now().await;
        switch.kill();
        let r = tokio::time::timeout(std::time::Duration::from_secs(2), reader)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionAborted);
    }
}
