//! `decnet up` on a fresh DECNET_HOME (the README's run command): CA created,
//! the local worker enrolled and its agent started, manifests applied, real
//! deckies converged in Docker, a status table printed. Then the `swarm`
//! views over the same resources.

mod support;

use support::{ShardCleanup, binary, free_port};

use std::process::Command;

#[test]
fn up_converges_a_fresh_home_and_swarm_views_show_it() {
    let home = tempfile::tempdir().unwrap();
    let manifests = tempfile::tempdir().unwrap();
    let shard = format!("up{}", std::process::id() % 100_000);
    let _cleanup = ShardCleanup::one(&shard);
    let agent_port = free_port();
    std::fs::write(
        manifests.path().join("fleet.yaml"),
        format!(
            "apiVersion: decnet.io/v1alpha1
kind: Worker
metadata: {{name: local}}
spec: {{address: 127.0.0.1, agentPort: {agent_port}}}
---
apiVersion: decnet.io/v1alpha1
kind: DeckyShard
metadata: {{name: {shard}}}
spec:
  worker: local
  deckies:
    - {{name: web, services: [http]}}
    - {{name: mail, services: [smtp]}}
"
        ),
    )
    .unwrap();

    let out = Command::new(binary())
        .args([
            "up",
            "--exit-when-ready",
            "--timeout",
            "240",
            "--host",
            "127.0.0.1",
        ])
        .args([
            "--listener-port",
            &free_port().to_string(),
            "--enroll-port",
            &free_port().to_string(),
        ])
        .arg("-f")
        .arg(manifests.path())
        .env("DECNET_HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "up failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(home.path().join("ca/ca.crt").exists(), "CA created");
    assert!(
        home.path().join("workers/local/worker.key").exists(),
        "local worker enrolled"
    );
    // The status table: the worker Active, the shard Ready with both deckies.
    let worker_row = stdout
        .lines()
        .find(|l| l.starts_with("local "))
        .unwrap_or_default();
    assert!(worker_row.contains("Active"), "{stdout}");
    let shard_row = stdout
        .lines()
        .find(|l| l.starts_with(&shard))
        .unwrap_or_default();
    assert!(
        shard_row.contains("Ready") && shard_row.contains("2/2"),
        "{stdout}"
    );
    assert!(stderr.contains("converged"), "{stderr}");

    // Real containers, labelled for the local worker.
    let running = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=decnet.io/shard={shard}"),
            "--filter",
            "label=decnet.io/worker=local",
        ])
        .args(["--format", "{{.Names}}"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&running.stdout);
    for c in [format!("{shard}-web"), format!("{shard}-mail")] {
        assert!(names.lines().any(|n| n == c), "{c} not running: {names}");
    }

    // `swarm list` reads the same Worker; `swarm check` probes for real: the agent
    // stopped with `up`, so it reports the worker unreachable and fails.
    let list = Command::new(binary())
        .args(["swarm", "list", "--json"])
        .env("DECNET_HOME", home.path())
        .output()
        .unwrap();
    assert!(list.status.success());
    let workers: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(workers[0]["metadata"]["name"], "local");
    assert_eq!(workers[0]["status"]["phase"], "Active");
    let check = Command::new(binary())
        .args(["swarm", "check"])
        .env("DECNET_HOME", home.path())
        .output()
        .unwrap();
    assert!(!check.status.success());
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("local")
            && String::from_utf8_lossy(&check.stdout).contains("FAIL")
    );
    let bad = Command::new(binary())
        .args(["swarm", "list", "--status", "Sleeping"])
        .env("DECNET_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Active"));
}
