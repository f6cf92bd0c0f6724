//! Store benchmark: apply 10,000 resources (parse + validate + one SQLite
//! transaction per file, the `decnet apply` path), re-apply them unchanged,
//! read them back, and time single-object gets.
//! Targets: apply ≥ 5,000 objects/s; `get` of one object < 1 ms median.
//! Run: `cargo bench --bench store`.

use std::fmt::Write;
use std::time::{Duration, Instant};

use decnet::api::Kind;
use decnet::manifest::parse_manifests;
use decnet::store::{Selector, Store};

const FILES: usize = 10;
const PER_FILE: usize = 1_000;

fn file_text(file: usize) -> String {
    let mut s = String::new();
    for i in 0..PER_FILE {
        let n = file * PER_FILE + i;
        let _ = match n % 4 {
            0 | 1 => write!(
                s,
                "---\napiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata:\n  name: worker-{n}\n  labels: {{zone: z{}, role: sensor}}\nspec:\n  address: 10.{}.{}.{}\n  agentPort: 8765\n  weight: {}\n",
                n % 7,
                (n >> 16) & 255,
                (n >> 8) & 255,
                n & 255,
                1 + n % 5
            ),
            2 => write!(
                s,
                "---\napiVersion: decnet.io/v1alpha1\nkind: DeckyShard\nmetadata:\n  name: shard-{n}\n  labels: {{fleet: f{}}}\nspec:\n  worker: worker-{}\n  networks:\n    - name: dmz\n      subnet: 172.30.0.0/24\n  deckies:\n    - name: web-{n}\n      services: [http, ssh]\n      ips: {{dmz: 172.30.0.11}}\n    - name: db-{n}\n      services: [mysql]\n      ips: {{dmz: 172.30.0.12}}\n",
                n % 3,
                n - 2
            ),
            _ => write!(
                s,
                "---\napiVersion: decnet.io/v1alpha1\nkind: Topology\nmetadata:\n  name: maze-{n}\nspec:\n  depth: {}\n  branching: 2\n  deckiesPerLan: 3\n  bridgeForwardProbability: 0.5\n  crossEdgeProbability: 0.1\n  services: [ssh, http]\n  seed: {n}\n",
                1 + n % 16
            ),
        };
    }
    s
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>10.0}/s", n as f64 / d.as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("decnet.db"))
        .await
        .expect("open store");
    let texts: Vec<String> = (0..FILES).map(file_text).collect();
    let total = FILES * PER_FILE;

    // 1. parse + validate + apply, one transaction per file (as `decnet apply -f DIR`).
    let t0 = Instant::now();
    let mut parse_time = Duration::ZERO;
    for (i, text) in texts.iter().enumerate() {
        let p0 = Instant::now();
        let docs = parse_manifests(&format!("bench-{i}.yaml"), text).expect("valid manifests");
        parse_time += p0.elapsed();
        let docs: Vec<_> = docs.into_iter().map(|m| (m.kind, m.doc)).collect();
        store.apply_all(&docs, false).await.expect("apply");
    }
    let apply = t0.elapsed();

    // 2. Re-apply: everything unchanged, nothing written.
    let t1 = Instant::now();
    for (i, text) in texts.iter().enumerate() {
        let docs = parse_manifests(&format!("bench-{i}.yaml"), text).expect("valid manifests");
        let docs: Vec<_> = docs.into_iter().map(|m| (m.kind, m.doc)).collect();
        store.apply_all(&docs, false).await.expect("apply");
    }
    let reapply = t1.elapsed();

    // 3. Read everything back.
    let t2 = Instant::now();
    let mut read = 0;
    for kind in Kind::ALL {
        read += store
            .list(kind, &Selector::default())
            .await
            .expect("list")
            .len();
    }
    let list = t2.elapsed();
    assert_eq!(read, total, "every applied object reads back");

    // 4. Single gets, spread over the keyspace.
    let mut lat = Vec::with_capacity(5_000);
    for i in 0..5_000usize {
        let n = (i * 7919) % total;
        let (kind, name) = match n % 4 {
            0 | 1 => (Kind::Worker, format!("worker-{n}")),
            2 => (Kind::DeckyShard, format!("shard-{n}")),
            _ => (Kind::Topology, format!("maze-{n}")),
        };
        let g = Instant::now();
        let obj = store.get(kind, &name).await.expect("get");
        lat.push(g.elapsed());
        assert!(obj.is_some(), "{kind}/{name}");
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];

    println!("decnet store benchmark ({total} objects in {FILES} files, SQLite WAL)");
    println!("{:<44} {:>10} {:>12}", "step", "time", "rate");
    println!(
        "{:<44} {:>9.3}s {}",
        "parse + validate (of apply)",
        parse_time.as_secs_f64(),
        rate(total, parse_time)
    );
    println!(
        "{:<44} {:>9.3}s {}",
        "apply: parse + validate + store (created)",
        apply.as_secs_f64(),
        rate(total, apply)
    );
    println!(
        "{:<44} {:>9.3}s {}",
        "re-apply (all unchanged)",
        reapply.as_secs_f64(),
        rate(total, reapply)
    );
    println!(
        "{:<44} {:>9.3}s {}",
        "list all kinds back",
        list.as_secs_f64(),
        rate(total, list)
    );
    println!(
        "get one object: median {:?}, p90 {:?}, p99 {:?} (n = {})",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        lat.len()
    );
    let apply_rate = total as f64 / apply.as_secs_f64();
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "(smoke run under `cargo test`, unoptimised: targets are judged by `cargo bench --bench store`)"
        );
    }
    println!(
        "targets: apply >= 5000/s: {} ({apply_rate:.0}/s); get median < 1 ms: {} ({:?})",
        if apply_rate >= 5000.0 {
            "MET"
        } else {
            "MISSED"
        },
        if pct(0.5) < Duration::from_millis(1) {
            "MET"
        } else {
            "MISSED"
        },
        pct(0.5)
    );
}
