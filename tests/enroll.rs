//! Worker enrollment with real parts: the `decnet` binary, a SQLite store in a temp
//! DECNET_HOME, the enrollment endpoint over real TLS, and the real `curl | bash` a worker runs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Once;

use decnet::api::{ConditionExt, Swarm, Worker, WorkerPhase};
use decnet::enroll::{self, BootstrapOptions, FINGERPRINT_ANNOTATION, WorkerRequest};
use decnet::master::MasterTls;
use decnet::pki::{Bundle, Fingerprint, Role};
use decnet::store::{Api, Store};
use tokio::sync::oneshot;

fn crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        crypto();
        Home(tempfile::tempdir().unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn decnet(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_decnet"))
            .args(args)
            .env("DECNET_HOME", self.path())
            .output()
            .unwrap()
    }
    async fn store(&self) -> Store {
        Store::open(&decnet::store::db_path(self.path()))
            .await
            .unwrap()
    }
    async fn master(&self) -> MasterTls {
        MasterTls::load(self.path(), self.store().await)
            .await
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn key_mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn worker(store: &Store, name: &str) -> Worker {
    Api::<Worker>::new(store.clone()).get(name).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_enroll_writes_a_loadable_bundle_and_an_enrolled_worker() {
    let h = Home::new();
    let dir = h.path().join("w1-bundle");
    let out = h.decnet(&[
        "swarm",
        "enroll",
        "--name",
        "w1",
        "--address",
        "127.0.0.1",
        "--sans",
        "w1.lan,10.0.0.9",
        "--agent-port",
        "9001",
        "--label",
        "zone=dmz",
        "--label",
        "tier=1",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("decnet agent --agent-dir"),
        "{}",
        stdout(&out)
    );

    let bundle = Bundle::load(&dir).unwrap();
    assert_eq!(bundle.role(), &Role::agent("w1").unwrap());
    assert_eq!(key_mode(&dir.join("worker.key")), 0o600);

    let store = h.store().await;
    let w = worker(&store, "w1").await;
    let st = w.status.clone().unwrap();
    assert_eq!(st.phase, Some(WorkerPhase::Enrolled));
    let fp = st.cert_fingerprint.clone().unwrap();
    assert_eq!(fp, bundle.fingerprint().to_string());
    // The same spelling the revocation list stores and parses.
    assert_eq!(fp.parse::<Fingerprint>().unwrap(), bundle.fingerprint());
    assert_eq!(fp, fp.to_ascii_lowercase());
    assert_eq!(st.observed_generation, w.metadata.generation);
    assert!(st.conditions.is_true("Enrolled"), "{:?}", st.conditions);
    assert_eq!(
        w.metadata.annotations.as_ref().unwrap()[FINGERPRINT_ANNOTATION],
        fp
    );
    let labels = w.metadata.labels.clone().unwrap();
    assert_eq!(labels["zone"], "dmz");
    assert_eq!(labels["tier"], "1");
    assert_eq!(w.spec.agent_port, 9001);
    assert_eq!(w.spec.sans, vec!["w1.lan", "10.0.0.9"]);
    let events = store
        .events(decnet::api::Kind::Worker, "w1", 10)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.reason == "Enrolled"), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_enroll_is_refused_with_the_fix() {
    let h = Home::new();
    let first = h.path().join("a");
    let second = h.path().join("b");
    let args = |dir: &Path| {
        vec![
            "swarm".to_string(),
            "enroll".into(),
            "--name".into(),
            "w1".into(),
            "--address".into(),
            "127.0.0.1".into(),
            "--out-dir".into(),
            dir.display().to_string(),
        ]
    };
    let a: Vec<String> = args(&first);
    let out = h.decnet(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    let b: Vec<String> = args(&second);
    let out = h.decnet(&b.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("worker \"w1\" already exists"), "{err}");
    assert!(err.contains("decnet swarm decommission --name w1"), "{err}");
    assert!(
        !second.exists(),
        "nothing may be written for a refused enrollment"
    );
    // The bootstrap flow refuses the same way.
    let out = h.decnet(&[
        "swarm",
        "enroll",
        "--name",
        "w1",
        "--address",
        "127.0.0.1",
        "--bootstrap",
        "--master-address",
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("decommission --name w1"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_validity_follows_the_swarm_and_bootstrap_needs_a_master_address() {
    let h = Home::new();
    let master = h.master().await;
    let req = WorkerRequest {
        name: "w3".into(),
        address: "127.0.0.1".into(),
        sans: vec![],
        agent_port: None,
        labels: Default::default(),
    };
    let e = enroll::bootstrap(&master, &req, &BootstrapOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--master-address"), "{e}");
    assert!(
        Api::<Worker>::new(master.store.clone())
            .get_opt("w3")
            .await
            .unwrap()
            .is_none()
    );

    let swarm: Swarm = serde_json::from_value(serde_json::json!({
        "apiVersion": "decnet.io/v1alpha1", "kind": "Swarm",
        "metadata": {"name": "main"},
        "spec": {"masterAddress": "127.0.0.1", "agentPort": 9100, "ca": {"leafValidityDays": 30}}
    }))
    .unwrap();
    Api::<Swarm>::new(master.store.clone())
        .create(&swarm)
        .await
        .unwrap();
    let dir = h.path().join("w3");
    let done = enroll::enroll(&master, &req, &dir).await.unwrap();
    let days = Bundle::load(&dir).unwrap().expires_in().as_secs() / 86_400;
    assert!(days < 31, "{days} days");
    assert_eq!(done.worker.spec.agent_port, 9100, "the Swarm's agentPort");
}

/// The enrollment endpoint on 127.0.0.1:<random>, stopped on drop of the sender.
struct Endpoint {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), enroll::EnrollError>>>,
}

impl Endpoint {
    async fn start(master: MasterTls) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(enroll::serve(listener, master, async move {
            let _ = rx.await;
        }));
        Endpoint {
            port,
            stop: Some(tx),
            task: Some(task),
        }
    }
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// Pieces of the printed `curl -fsSLk --pinnedpubkey 'sha256//PIN' URL | sudo bash`.
struct Printed {
    command: String,
    pin: String,
    script_url: String,
}

impl Printed {
    fn parse(command: &str) -> Printed {
        let command = command.trim().to_string();
        assert!(
            command.starts_with("curl -fsSLk --pinnedpubkey 'sha256//"),
            "{command}"
        );
        assert!(command.ends_with(".sh | sudo bash"), "{command}");
        let pin = command.split('\'').nth(1).unwrap().to_string();
        let script_url = command
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .unwrap()
            .to_string();
        Printed {
            command,
            pin,
            script_url,
        }
    }
    fn bundle_url(&self) -> String {
        self.script_url.replace(".sh", "/bundle.tar")
    }
    /// The command as run on the worker, without sudo (we are root in CI).
    fn without_sudo(&self) -> String {
        self.command.replace("| sudo bash", "| bash")
    }
}

/// Runs `cmd` like an operator's shell, with pipefail so a failing curl fails the pipeline.
async fn run_shell(cmd: &str, agent_dir: &Path) -> Output {
    tokio::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", cmd])
        .env("DECNET_AGENT_DIR", agent_dir)
        .output()
        .await
        .unwrap()
}

/// HTTP status and body of a GET with curl, pinned like the worker does it.
async fn curl_get(url: &str, pin: &str, extra: &[&str]) -> (String, Vec<u8>) {
    let body = tempfile::NamedTempFile::new().unwrap();
    let out = tokio::process::Command::new("curl")
        .args(["-sk", "--pinnedpubkey", pin, "-o"])
        .arg(body.path())
        .args(["-w", "%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .await
        .unwrap();
    (stdout(&out), std::fs::read(body.path()).unwrap_or_default())
}

async fn token_row(store: &Store, worker: &str) -> (Option<String>, Option<i64>, Option<String>) {
    sqlx::query_as(
        "SELECT key_pem, bundle_fetched_at, source_address FROM enroll_tokens WHERE worker = ?",
    )
    .bind(worker)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

async fn bootstrap_in_process(master: &MasterTls, name: &str, port: u16) -> Printed {
    let req = WorkerRequest {
        name: name.into(),
        address: "127.0.0.1".into(),
        sans: vec![],
        agent_port: None,
        labels: Default::default(),
    };
    let opts = BootstrapOptions {
        master_address: Some("127.0.0.1".into()),
        enroll_port: Some(port),
    };
    let b = enroll::bootstrap(master, &req, &opts).await.unwrap();
    Printed::parse(&b.command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_with_curl_pipe_bash_enrolls_once() {
    let h = Home::new();
    let master = h.master().await;
    let store = master.store.clone();
    let ep = Endpoint::start(master).await;

    let port = ep.port.to_string();
    let out = h.decnet(&[
        "swarm",
        "enroll",
        "--name",
        "w2",
        "--address",
        "127.0.0.1",
        "--label",
        "zone=lab",
        "--bootstrap",
        "--master-address",
        "127.0.0.1",
        "--enroll-port",
        &port,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = Printed::parse(&stdout(&out));
    assert_eq!(
        worker(&store, "w2").await.status.unwrap().phase,
        Some(WorkerPhase::Pending)
    );
    let (key, fetched, _) = token_row(&store, "w2").await;
    assert!(key.is_some() && fetched.is_none());

    let agent_dir = h.path().join("agent dir"); // a space: the script must quote it
    let run = run_shell(&printed.without_sudo(), &agent_dir).await;
    assert!(
        run.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(&run),
        stderr(&run)
    );
    let said = stdout(&run);
    assert!(said.contains("worker w2 enrolled"), "{said}");
    assert!(said.contains("decnet agent --agent-dir"), "{said}");

    for f in ["ca.crt", "worker.crt", "worker.key"] {
        assert!(agent_dir.join(f).is_file(), "{f} missing");
    }
    assert_eq!(key_mode(&agent_dir.join("worker.key")), 0o600);
    let bundle = Bundle::load(&agent_dir).unwrap();
    assert_eq!(bundle.role(), &Role::agent("w2").unwrap());

    let w = worker(&store, "w2").await;
    let st = w.status.unwrap();
    assert_eq!(st.phase, Some(WorkerPhase::Enrolled));
    assert_eq!(
        st.cert_fingerprint.as_deref(),
        Some(bundle.fingerprint().to_string().as_str())
    );
    assert_eq!(st.source_address.as_deref(), Some("127.0.0.1"));
    assert!(st.conditions.is_true("Enrolled"));
    assert_eq!(w.metadata.labels.unwrap()["zone"], "lab");

    // The master no longer holds the key; the row keeps the audit trail.
    let (key, fetched, source) = token_row(&store, "w2").await;
    assert!(key.is_none(), "key material must be forgotten");
    assert!(fetched.is_some());
    assert_eq!(source.as_deref(), Some("127.0.0.1"));

    // Replays: both URLs are spent; 404 with nothing in the body.
    for url in [printed.script_url.clone(), printed.bundle_url()] {
        let (code, body) = curl_get(&url, &printed.pin, &[]).await;
        assert_eq!(code, "404", "{url}");
        assert!(body.is_empty(), "{url}: {}", String::from_utf8_lossy(&body));
    }
    let again = run_shell(&printed.without_sudo(), &h.path().join("again")).await;
    assert!(!again.status.success());
    // Unknown, malformed and unrelated paths look the same.
    let base = format!("https://127.0.0.1:{}", ep.port);
    let unknown = format!("{base}/enroll/{}.sh", enroll::Token::generate().expose());
    for url in [
        unknown,
        format!("{base}/enroll/not-a-token.sh"),
        format!("{base}/enroll/%ff%fe.sh"),
        format!("{base}/enroll/../etc/passwd"),
        format!("{base}/"),
    ] {
        let (code, body) = curl_get(&url, &printed.pin, &[]).await;
        assert_eq!(code, "404", "{url}");
        assert!(body.is_empty(), "{url}");
    }
    ep.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_404_and_its_key_is_deleted() {
    let h = Home::new();
    let master = h.master().await;
    let store = master.store.clone();
    let ep = Endpoint::start(master.clone()).await;
    let printed = bootstrap_in_process(&master, "w4", ep.port).await;
    sqlx::query("UPDATE enroll_tokens SET expires_at = 0 WHERE worker = 'w4'")
        .execute(store.pool())
        .await
        .unwrap();
    let (code, body) = curl_get(&printed.script_url, &printed.pin, &[]).await;
    assert_eq!(code, "404");
    assert!(body.is_empty());
    let (key, _, _) = token_row(&store, "w4").await;
    assert!(key.is_none(), "an expired token's key must be deleted");
    let st = worker(&store, "w4").await.status.unwrap();
    assert_eq!(st.phase, Some(WorkerPhase::Pending));
    let cond = st.conditions.condition("Enrolled").unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("False", "TokenExpired")
    );
    ep.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_makes_curl_refuse_the_master() {
    let h = Home::new();
    let master = h.master().await;
    let ep = Endpoint::start(master.clone()).await;
    let printed = bootstrap_in_process(&master, "w5", ep.port).await;
    // Same length, different key hash.
    let wrong = printed.command.replace(
        &printed.pin,
        "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let dir = h.path().join("agent");
    let run = run_shell(&wrong.replace("| sudo bash", "| bash"), &dir).await;
    assert!(!run.status.success());
    assert!(!dir.join("worker.key").exists());
    // curl gave up in the handshake: the token is untouched and still works.
    let run = run_shell(&printed.without_sudo(), &dir).await;
    assert!(run.status.success(), "{}", stderr(&run));
    Bundle::load(&dir).unwrap();
    ep.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_needs_the_script_first_and_the_same_source_address() {
    let h = Home::new();
    let master = h.master().await;
    let ep = Endpoint::start(master.clone()).await;
    let printed = bootstrap_in_process(&master, "w6", ep.port).await;
    let (code, _) = curl_get(&printed.bundle_url(), &printed.pin, &[]).await;
    assert_eq!(code, "404", "bundle before script");
    let (code, script) = curl_get(&printed.script_url, &printed.pin, &[]).await;
    assert_eq!(code, "200");
    assert!(String::from_utf8_lossy(&script).starts_with("#!/usr/bin/env bash"));
    // Another loopback source address (all of 127/8 is local on Linux).
    let (code, _) = curl_get(
        &printed.bundle_url(),
        &printed.pin,
        &["--interface", "127.0.0.2"],
    )
    .await;
    assert_eq!(code, "404", "bundle from another address");
    let (code, tar) = curl_get(&printed.bundle_url(), &printed.pin, &[]).await;
    assert_eq!(code, "200");
    assert!(tar.len() > 1024);
    ep.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_script_fetches_have_one_winner() {
    let h = Home::new();
    let master = h.master().await;
    let ep = Endpoint::start(master.clone()).await;
    let printed = bootstrap_in_process(&master, "w7", ep.port).await;
    let fetches = (0..6).map(|_| curl_get(&printed.script_url, &printed.pin, &[]));
    let codes: Vec<String> = futures::future::join_all(fetches)
        .await
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(codes.iter().filter(|c| *c == "200").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "404").count(), 5, "{codes:?}");
    ep.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_out_dir_revokes_the_certificate_and_removes_the_worker() {
    let h = Home::new();
    let master = h.master().await;
    let blocker = h.path().join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let req = WorkerRequest {
        name: "w9".into(),
        address: "127.0.0.1".into(),
        sans: vec![],
        agent_port: None,
        labels: Default::default(),
    };
    let e = enroll::enroll(&master, &req, &blocker.join("bundle"))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("revoked") && msg.contains("w9"), "{msg}");
    let store = &master.store;
    assert!(
        Api::<Worker>::new(store.clone())
            .get_opt("w9")
            .await
            .unwrap()
            .is_none()
    );
    let revoked = store.revocations().await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].subject, "w9");
    // And live in the running verifiers' list.
    let fp: Fingerprint = revoked[0].fingerprint.parse().unwrap();
    assert!(master.revoked.is_revoked(&fp));
}

#[test]
fn cli_refuses_bad_input_with_usage_errors() {
    let h = Home::new();
    for (args, needle) in [
        (
            vec![
                "--name",
                "w1",
                "--address",
                "127.0.0.1",
                "--label",
                "nokv",
                "--out-dir",
                "x",
            ],
            "key=value",
        ),
        (
            vec![
                "--name",
                "Not_A_Label",
                "--address",
                "127.0.0.1",
                "--out-dir",
                "x",
            ],
            "Not_A_Label",
        ),
        (vec!["--name", "w1", "--address", "127.0.0.1"], "--out-dir"),
    ] {
        let mut full = vec!["swarm", "enroll"];
        full.extend(args);
        let out = h.decnet(&full);
        assert_eq!(out.status.code(), Some(2), "{full:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{full:?}: {}", stderr(&out));
    }
}
