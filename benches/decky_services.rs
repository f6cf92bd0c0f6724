//! Decky services benchmark (loopback only, bounded in time). Listen ports are below the
//! ephemeral range so the load generator's own client ports never collide with them.
//!
//! 1. Throughput: `decnet decky serve` runs as a child process on 127.0.0.1 with a high port,
//!    its stdout (the event lines) counted — and every line parsed — by this process. Clients:
//!    - ssh: russh clients doing a full handshake plus one refused password attempt, then
//!      disconnecting (events per connection: connection, client_kex, login_attempt,
//!      disconnect). The failure delay is set to 0 to measure capacity, not the delay.
//!    - http: raw TCP, one request with Basic auth per connection, `Connection: close`
//!      (connection, request, login_attempt, disconnect).
//! 2. Memory of an idle decky with 3 services (ssh, http, ftp), VmRSS (with its anonymous and
//!    file-backed parts: the binary's pages are shared by every decky on the host):
//!    - one process serving the 3 services (`--service ssh,http,ftp`, what a decky runs), and
//!      for comparison one process per service (the layout before one container per decky);
//!    - the real decky deployed by the agent in Docker (one container), from /proc.
//!
//!    Target: under 15 MiB.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use decnet::agent::Executor;
use decnet::agent::executor::DECKY_ENV;
use decnet::api::{DeckyShardSpec, DeckySpec, LanSpec, NetworkDriver, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RUN: Duration = Duration::from_secs(5);

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_decnet"))
}

/// A `decky serve` child whose stdout lines are counted (and checked) by a thread.
struct Server {
    child: Child,
    lines: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args(["decky", "serve", "--decky", "bench", "--bind", "127.0.0.1"])
            // As the agent runs deckies.
            .envs(DECKY_ENV.iter().filter_map(|e| e.split_once('=')))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start decky serve");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let (l, b) = (lines.clone(), bad.clone());
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(out);
            let mut buf = Vec::new();
            while r
                .read_until(b'\n', &mut buf)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                if decnet::syslog::parse(line).is_err() {
                    b.fetch_add(1, Ordering::Relaxed);
                }
                l.fetch_add(1, Ordering::Relaxed);
                buf.clear();
            }
        });
        Server { child, lines, bad }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, KiB: total and its anonymous / file-backed parts.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: u64,
    anon: u64,
    file: u64,
}

impl Mem {
    fn of(pid: u32) -> Mem {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Mem {
            rss: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        }
    }

    fn sum(ms: impl IntoIterator<Item = Mem>) -> Mem {
        ms.into_iter().fold(Mem::default(), |a, m| Mem {
            rss: a.rss + m.rss,
            anon: a.anon + m.anon,
            file: a.file + m.file,
        })
    }

    fn row(&self) -> String {
        let mib = |k: u64| k as f64 / 1024.0;
        format!(
            "{:.1} MiB ({:.1} anon + {:.1} file)",
            mib(self.rss),
            mib(self.anon),
            mib(self.file)
        )
    }
}

const TARGET_KIB: u64 = 15 * 1024;

fn verdict(kib: u64) -> &'static str {
    if kib < TARGET_KIB { "met" } else { "MISSED" }
}

async fn wait_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("port {port} never opened");
}

struct SshClient;

impl russh::client::Handler for SshClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn ssh_once(config: Arc<russh::client::Config>, port: u16) -> bool {
    ssh_addr_once(config, ("127.0.0.1", port)).await
}

async fn ssh_addr_once(config: Arc<russh::client::Config>, addr: (&str, u16)) -> bool {
    let Ok(mut h) = russh::client::connect(config, addr, SshClient).await else {
        return false;
    };
    let refused = matches!(
        h.authenticate_password("root", "123456").await,
        Ok(russh::client::AuthResult::Failure { .. })
    );
    let _ = h
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    refused
}

async fn http_once(port: u16) -> bool {
    http_addr_once(("127.0.0.1", port)).await
}

async fn http_addr_once(addr: (&str, u16)) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let req = b"GET /admin/ HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench/1\r\n\
                Authorization: Basic cm9vdDoxMjM0NTY=\r\nConnection: close\r\n\r\n";
    if s.write_all(req).await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.is_ok() && out.starts_with(b"HTTP/1.1 401")
}

/// Runs `once` from `workers` tasks for [`RUN`]; returns (ok connections, failures, secs).
async fn load<F, Fut>(workers: usize, once: F) -> (u64, u64, f64)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (ok, failed, once) = (ok.clone(), failed.clone(), once.clone());
            tokio::spawn(async move {
                while started.elapsed() < RUN {
                    if once().await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// Waits until the line counter stops moving (the writer drained), returns the count.
async fn settled(lines: &AtomicU64) -> u64 {
    let mut last = u64::MAX;
    loop {
        let now = lines.load(Ordering::Relaxed);
        if now == last {
            return now;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn throughput() {
    println!(
        "throughput (child process on 127.0.0.1, {}s per run, 2-core machine)",
        RUN.as_secs()
    );
    println!("| service | clients | connections/s | events/s | failed | unparseable lines |");
    println!("|---|---|---|---|---|---|");

    let port = 30022;
    let server = Server::start(&[
        "--service",
        "ssh",
        "--port",
        &port.to_string(),
        "--ssh-auth-delay-ms",
        "0",
        "--max-connections",
        "4096",
    ]);
    wait_port(port).await;
    let before = settled(&server.lines).await;
    let config = Arc::new(russh::client::Config::default());
    let (ok, failed, secs) = load(16, move || ssh_once(config.clone(), port)).await;
    let events = settled(&server.lines).await - before;
    println!(
        "| ssh (handshake + 1 refused password) | 16 | {:.0} | {:.0} | {failed} | {} |",
        ok as f64 / secs,
        events as f64 / secs,
        server.bad.load(Ordering::Relaxed)
    );
    drop(server);

    let port = 30080;
    let server = Server::start(&[
        "--service",
        "http",
        "--port",
        &port.to_string(),
        "--max-connections",
        "4096",
    ]);
    wait_port(port).await;
    let before = settled(&server.lines).await;
    let (ok, failed, secs) = load(64, move || http_once(port)).await;
    let events = settled(&server.lines).await - before;
    println!(
        "| http (1 Basic-auth request per connection) | 64 | {:.0} | {:.0} | {failed} | {} |",
        ok as f64 / secs,
        events as f64 / secs,
        server.bad.load(Ordering::Relaxed)
    );
}

async fn memory_processes() {
    let split: Vec<Server> = [("ssh", 31022), ("http", 31080), ("ftp", 31021)]
        .iter()
        .map(|(s, p)| Server::start(&["--service", s, "--port", &p.to_string()]))
        .collect();
    let joint = Server::start(&["--service", "ssh,http,ftp", "--port-offset", "32000"]);
    for p in [31022, 31080, 31021, 32022, 32080, 32021] {
        wait_port(p).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let measure = |split: &[Server], joint: &Server| {
        (
            Mem::sum(split.iter().map(|s| Mem::of(s.child.id()))),
            Mem::of(joint.child.id()),
        )
    };
    let cold = measure(&split, &joint);
    // Then one real connection per service: code paths and lazily-built state (the SSH host
    // key) become resident.
    let config = Arc::new(russh::client::Config::default());
    ssh_once(config.clone(), 31022).await;
    ssh_once(config, 32022).await;
    http_once(31080).await;
    http_once(32080).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warm = measure(&split, &joint);
    println!("\nidle decky, 3 services (ssh, http, ftp), VmRSS of host processes (this binary)");
    println!("| layout | processes | idle (ports only probed) | after 1 connection per service |");
    println!("|---|---|---|---|");
    println!(
        "| one process for the 3 services (deployed) | 1 | {} | {} |",
        cold.1.row(),
        warm.1.row()
    );
    println!(
        "| one process per service (before) | 3 | {} | {} |",
        cold.0.row(),
        warm.0.row()
    );
    println!(
        "target < 15 MiB for the deployed layout: {}",
        verdict(warm.1.rss)
    );
}

async fn memory_docker() {
    let shard = format!("bench{}-mem", std::process::id() % 100_000);
    let executor = match Executor::connect(binary()).await {
        Ok(e) => e,
        Err(e) => {
            println!("(docker unavailable, container memory skipped: {e})");
            return;
        }
    };
    let spec = DeckyShardSpec {
        worker: "local".into(),
        networks: vec![LanSpec {
            name: "lan".into(),
            subnet: Some("10.250.79.0/24".into()),
            driver: NetworkDriver::Bridge,
            parent: None,
            internal: false,
        }],
        deckies: vec![DeckySpec {
            name: "mem".into(),
            services: vec![Service::Ssh, Service::Http, Service::Ftp],
            ips: [("lan".to_owned(), "10.250.79.10".to_owned())].into(),
            forwards_l3: false,
            personality: None,
        }],
    };
    let result = async {
        executor
            .deploy(&shard, &spec)
            .await
            .map_err(|e| e.to_string())?;
        for port in [22, 80, 21] {
            let mut up = false;
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(("10.250.79.10", port))
                    .await
                    .is_ok()
                {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !up {
                return Err(format!("port {port} never opened"));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Exercise every service once, as in the process measurement.
        let config = Arc::new(russh::client::Config::default());
        let ssh = tokio::time::timeout(
            Duration::from_secs(10),
            ssh_addr_once(config, ("10.250.79.10", 22)),
        )
        .await;
        if !matches!(ssh, Ok(true)) || !http_addr_once(("10.250.79.10", 80)).await {
            return Err("the decky did not answer ssh and http as expected".into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let docker = executor.docker();
        let name = format!("{shard}-mem");
        let info = docker
            .inspect_container(&name, None)
            .await
            .map_err(|e| e.to_string())?;
        let pid = info.state.and_then(|s| s.pid).unwrap_or(0);
        Ok::<_, String>((name, Mem::of(pid as u32)))
    }
    .await;
    let _ = executor.teardown(Some(&shard), None).await;
    match result {
        Ok((name, mem)) => {
            println!("\ndeployed decky in Docker (one container, ssh+http+ftp), VmRSS");
            println!("  {name}: {}", mem.row());
            println!("  target < 15 MiB: {}", verdict(mem.rss));
        }
        Err(e) => println!("(container memory skipped: {e})"),
    }
}

fn main() {
    // `cargo bench` passes --bench; this harness takes no arguments.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        throughput().await;
        memory_processes().await;
        memory_docker().await;
    });
}
