//! The worker collector against the real Docker daemon: containers of the
//! locally built decky image print numbered event lines (`decnet decky emit`),
//! a real `decnet collector` process appends them to its file, and is killed
//! and restarted in the middle. No network traffic: stdout only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use decnet::agent::Executor;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_decnet"))
}

async fn docker() -> Docker {
    Docker::connect_with_socket_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .expect("docker daemon")
}

/// Containers removed when the test ends, even on panic.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let d = docker().await;
                for n in names {
                    let _ = d
                        .remove_container(
                            &n,
                            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                        )
                        .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// What an emitter container prints: `count` lines tagged `tag`, one every
/// `every_ms`, then exits unless `hold`.
struct Lines<'a> {
    tag: &'a str,
    count: u32,
    every_ms: u32,
    hold: bool,
}

/// A labelled decky-like container printing `lines`.
async fn emitter(d: &Docker, image: &str, shard: &str, name: &str, lines: Lines<'_>) {
    let Lines {
        tag,
        count,
        every_ms,
        hold,
    } = lines;
    let labels = HashMap::from([
        ("decnet.io/managed".to_string(), "true".to_string()),
        ("decnet.io/shard".to_string(), shard.to_string()),
        ("decnet.io/decky".to_string(), name.to_string()),
        ("decnet.io/role".to_string(), "service".to_string()),
        ("decnet.io/service".to_string(), "ssh".to_string()),
    ]);
    let mut cmd: Vec<String> = [
        "decky",
        "emit",
        "--count",
        &count.to_string(),
        "--tag",
        tag,
        "--every-ms",
        &every_ms.to_string(),
    ]
    .map(String::from)
    .to_vec();
    if hold {
        cmd.push("--hold".into());
    }
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd),
        labels: Some(labels),
        stop_timeout: Some(1),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default()
        .name(&format!("{shard}-{name}"))
        .build();
    let id = d.create_container(Some(opts), body).await.unwrap().id;
    d.start_container(
        &id,
        None::<bollard::query_parameters::StartContainerOptions>,
    )
    .await
    .unwrap();
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn collector(log: &Path, db: &Path) -> Proc {
    Proc(
        Command::new(binary())
            .args(["collector", "--log-path"])
            .arg(log)
            .arg("--state-db")
            .arg(db)
            .env("DECNET_LOG", "decnet=info")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Lines of the file carrying `tag`, as their numbers in file order.
fn numbers(log: &Path, tag: &str) -> Vec<u32> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let needle = format!(" {tag} ");
    text.lines()
        .filter_map(|l| {
            l.find(&needle)
                .map(|i| l[i + needle.len()..].trim().parse().unwrap())
        })
        .collect()
}

async fn wait_for(log: &Path, tag: &str, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let got = numbers(log, tag).len();
        if got >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_once_in_order(log: &Path, tag: &str, n: u32) {
    let got = numbers(log, tag);
    assert_eq!(
        got,
        (0..n).collect::<Vec<_>>(),
        "{tag}: every line exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collects_every_line_once_across_kills_restarts_and_recreation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let d = docker().await;
    let image = Executor::connect(binary())
        .await
        .unwrap()
        .ensure_image()
        .await
        .unwrap();
    let shard = format!("t{}-coll", std::process::id() % 100_000);
    let _cleanup = Cleanup(vec![format!("{shard}-a"), format!("{shard}-b")]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/deckies.log");
    let db = dir.path().join("collector.db");

    // A container already running (and printing) before the collector starts.
    emitter(
        &d,
        &image,
        &shard,
        "a",
        Lines {
            tag: "A1",
            count: 600,
            every_ms: 8,
            hold: true,
        },
    )
    .await;
    let mut c = collector(&log, &db);
    assert!(
        wait_for(&log, "A1", 100, Duration::from_secs(60)).await >= 100,
        "collector started following"
    );
    // SIGKILL mid-stream, lines keep coming while it is down.
    drop(c);
    tokio::time::sleep(Duration::from_millis(700)).await;
    c = collector(&log, &db);
    assert_eq!(
        wait_for(&log, "A1", 600, Duration::from_secs(60)).await,
        600
    );
    assert_once_in_order(&log, "A1", 600);

    // A container appearing while the collector runs, exiting on its own.
    emitter(
        &d,
        &image,
        &shard,
        "b",
        Lines {
            tag: "B1",
            count: 300,
            every_ms: 0,
            hold: false,
        },
    )
    .await;
    assert_eq!(
        wait_for(&log, "B1", 300, Duration::from_secs(30)).await,
        300
    );

    // A restart re-reads both containers' logs from their cursors: nothing is written twice.
    let size = std::fs::metadata(&log).unwrap().len();
    drop(c);
    c = collector(&log, &db);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        size,
        "a restart rewrote lines"
    );

    // The container removed and created again under its name is followed again.
    d.remove_container(
        &format!("{shard}-a"),
        Some(RemoveContainerOptionsBuilder::default().force(true).build()),
    )
    .await
    .unwrap();
    emitter(
        &d,
        &image,
        &shard,
        "a",
        Lines {
            tag: "A2",
            count: 150,
            every_ms: 0,
            hold: true,
        },
    )
    .await;
    assert_eq!(
        wait_for(&log, "A2", 150, Duration::from_secs(30)).await,
        150
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(c);

    assert_once_in_order(&log, "A1", 600);
    assert_once_in_order(&log, "B1", 300);
    assert_once_in_order(&log, "A2", 150);
    // Whole lines only, each a valid RFC 5424 message.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), 1050);
    for l in text.lines() {
        decnet::syslog::parse(l.as_bytes()).unwrap_or_else(|e| panic!("{l:?}: {e}"));
    }
    // The removed container's cursor is gone; the live ones remain.
    let pool = decnet::store::open_pool(&db).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM cursors ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, [format!("{shard}-a"), format!("{shard}-b")]);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM journal")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
