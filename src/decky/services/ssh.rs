//! SSH: a real SSH-2 server (russh, ring crypto) that offers password and
//! keyboard-interactive authentication, logs every username/password pair and refuses them
//! all, like an OpenSSH with a strong password policy. The identification string comes from
//! the personality. Before russh reads the stream, [`Tap`] captures the client's version
//! string and KEXINIT for the `client_kex` event (HASSH fingerprint).
//!
//! No login ever succeeds, so no SSH command can be typed: command capture is telnet's job.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use russh::MethodKind;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server::{Auth, Response};
use tokio::net::TcpStream;

use super::ServiceCtx;
use super::emitter::Emitter;
use super::error::{EndReason, ServiceError};
use super::event::{Event, Session, kind};
use super::hassh::{ClientHello, Tap};
use super::killswitch::KillSwitch;
use super::limits::Limits;
use super::persona::Persona;

/// OpenSSH's default MaxAuthTries.
pub const MAX_AUTH_TRIES: usize = 6;

/// Server configuration with a fresh Ed25519 host key (one per process).
pub fn config(
    persona: &Persona,
    limits: &Limits,
) -> Result<Arc<russh::server::Config>, ServiceError> {
    let seed: [u8; 32] = rand::random();
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    Ok(Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard(Cow::Owned(persona.ssh_banner.clone())),
        methods: russh::MethodSet::from(
            &[MethodKind::Password, MethodKind::KeyboardInteractive][..],
        ),
        auth_rejection_time: limits.ssh_auth_delay,
        // OpenSSH clients probe with "none" first: answer that at once.
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        keys: vec![key],
        max_auth_attempts: MAX_AUTH_TRIES,
        inactivity_timeout: Some(limits.idle_timeout),
        nodelay: true,
        ..Default::default()
    }))
}

/// The `client_kex` event for a captured hello.
pub fn kex_event(h: &ClientHello) -> Event {
    Event::new(kind::CLIENT_KEX)
        .with("client_version", h.version.clone())
        .with("hassh", h.hassh())
        .with("hassh_algorithms", h.hassh_algorithms())
}

struct Handler {
    session: Session,
    emitter: Emitter,
    hello: Arc<OnceLock<ClientHello>>,
}

impl Handler {
    async fn login(&self, method: &str, user: &str, password: &str) {
        let mut e = Event::new(kind::LOGIN_ATTEMPT)
            .with("auth_method", method)
            .with("username", user)
            .with("password", password)
            .with("outcome", "failure");
        if let Some(h) = self.hello.get() {
            e = e
                .with("client_version", h.version.clone())
                .with("hassh", h.hassh());
        }
        self.emitter.emit(&self.session, &e).await;
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        self.login("password", user, password).await;
        Ok(Auth::reject())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        match response {
            // First round: ask for the password the way PAM does.
            None => Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(Cow::Borrowed("Password: "), false)]),
            }),
            Some(answers) => {
                let password = answers
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .next()
                    .unwrap_or_default();
                self.login("keyboard-interactive", user, &password).await;
                Ok(Auth::reject())
            }
        }
    }
}

/// Kills the connection unless disarmed (see [`KillSwitch`]).
struct KillOnDrop(Option<KillSwitch>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(k) = self.0.take() {
            k.kill();
        }
    }
}

pub async fn run(
    stream: TcpStream,
    session: &Session,
    ctx: &ServiceCtx,
) -> Result<EndReason, ServiceError> {
    let config = ctx.ssh_config()?;
    // russh runs the session on its own task: if our caller gives up (session timeout), the
    // guard fails the socket under russh, so the connection cannot outlive its slot.
    let switch = KillSwitch::new();
    let mut guard = KillOnDrop(Some(switch.clone()));
    let stream = switch.wrap(stream);
    let hello = Arc::new(OnceLock::new());
    let tap = {
        let (hello, emitter, session) = (hello.clone(), ctx.emitter.clone(), session.clone());
        Tap::new(stream, move |h: ClientHello| {
            emitter.try_emit(&session, &kex_event(&h));
            let _ = hello.set(h);
        })
    };
    let handler = Handler {
        session: session.clone(),
        emitter: ctx.emitter.clone(),
        hello,
    };
    let running = match russh::server::run_stream(config, tap, handler).await {
        Ok(r) => r,
        Err(russh::Error::InactivityTimeout) => return Ok(EndReason::IdleTimeout),
        Err(russh::Error::IO(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(EndReason::ClientClosed);
        }
        Err(e) => return Err(e.into()),
    };
    let result = running.await;
    guard.0 = None;
    match result {
        Ok(()) | Err(russh::Error::Disconnect | russh::Error::HUP) => Ok(EndReason::ClientClosed),
        Err(russh::Error::InactivityTimeout) => Ok(EndReason::IdleTimeout),
        Err(russh::Error::IO(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(EndReason::ClientClosed)
        }
        Err(e) => Err(e.into()),
    }
}
