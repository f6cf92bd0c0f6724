//! The `decnet` binary as an operator uses it, on a fresh DECNET_HOME.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().unwrap())
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_decnet"))
            .args(args)
            .env("DECNET_HOME", self.0.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "decnet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "decnet {args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
    fn count(&self, kind: &str) -> usize {
        self.ok(&["get", kind, "-o", "name"]).lines().count()
    }
}

#[test]
fn examples_apply_on_a_fresh_home() {
    let h = Home::new();
    let out = h.ok(&["apply", "-f", "examples/"]);
    assert_eq!(out.matches(" created").count(), 5, "{out}");
    assert!(Path::new(&h.0.path().join("decnet.db")).exists());
    let again = h.ok(&["apply", "-f", "examples/"]);
    assert_eq!(again.matches(" unchanged").count(), 5, "{again}");
    assert_eq!(h.count("wk"), 2);
    assert_eq!(h.count("topo"), 1);
    assert_eq!(h.count("ds"), 1);
    assert_eq!(h.count("swarm"), 1);
}

#[test]
fn get_formats() {
    let h = Home::new();
    h.ok(&["apply", "-f", "examples/"]);
    let table = h.ok(&["get", "workers"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("local") && table.contains("127.0.0.2"),
        "{table}"
    );
    let wide = h.ok(&["get", "wk", "-o", "wide"]);
    assert!(
        wide.contains("LABELS") && wide.contains("role=sensor"),
        "{wide}"
    );
    let y = h.ok(&["get", "worker", "local", "-o", "yaml"]);
    assert!(
        y.contains("kind: Worker")
            && y.contains("resourceVersion:")
            && y.contains("agentPort: 8765"),
        "{y}"
    );
    let j: serde_json::Value = serde_json::from_str(&h.ok(&["get", "ds", "-o", "json"])).unwrap();
    assert_eq!(j["kind"], "List");
    assert_eq!(
        j["items"][0]["spec"]["deckies"].as_array().unwrap().len(),
        3
    );
    let sel = h.ok(&["get", "ds", "-l", "fleet=dmz", "-o", "name"]);
    assert_eq!(sel.trim(), "deckyshard.decnet.io/dmz-local");
    assert_eq!(
        h.ok(&["get", "ds", "-l", "fleet=none"]).trim(),
        "No deckyshards found."
    );
    let e = h.fails(&["get", "wk", "nope"]);
    assert!(
        e.contains("not found") && e.contains("decnet get workers"),
        "{e}"
    );
    let e = h.fails(&["get", "pods"]);
    assert!(
        e.contains("unknown kind") && e.contains("DeckyShard"),
        "{e}"
    );
}

#[test]
fn describe_shows_spec_status_and_events() {
    let h = Home::new();
    h.ok(&["apply", "-f", "examples/"]);
    let d = h.ok(&["describe", "topo", "maze"]);
    for want in [
        "Name:        maze",
        "Kind:        Topology",
        "Generation:  1",
        "Spec:",
        "depth: 3",
        "Status:",
        "Events:",
    ] {
        assert!(d.contains(want), "missing {want:?} in\n{d}");
    }
}

#[test]
fn bad_input_names_file_document_field_and_allowed_values() {
    let h = Home::new();
    let good_then = |bad: &str| {
        format!(
            "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {{name: fine}}\nspec: {{address: 10.0.0.1}}\n---\n{bad}"
        )
    };
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "syntax.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {name: x\nspec: {}\n",
            &[
                "syntax.yaml",
                "document 2",
                "(line 5)",
                "YAML syntax error",
                "line 9",
            ],
        ),
        (
            "kind.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: Honeypot\nmetadata: {name: x}\nspec: {}\n",
            &[
                "kind.yaml",
                "document 2",
                "unknown kind \"Honeypot\"",
                "allowed: Swarm",
                "DeckyShard",
            ],
        ),
        (
            "field.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {name: w}\nspec: {address: a, agentPrt: 1}\n",
            &[
                "field.yaml",
                "document 2",
                "Worker/w",
                "spec.agentPrt",
                "unknown field",
                "did you mean \"agentPort\"",
                "allowed: address, agentPort",
            ],
        ),
        (
            "range.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: Topology\nmetadata: {name: t}\nspec: {depth: 40, branching: 2, deckiesPerLan: 1, services: [ssh]}\n",
            &[
                "range.yaml",
                "document 2",
                "Topology/t",
                "spec.depth",
                "40 is out of range",
                "allowed: 1 to 16",
            ],
        ),
        (
            "prob.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: Topology\nmetadata: {name: t}\nspec: {depth: 2, branching: 2, deckiesPerLan: 1, crossEdgeProbability: -0.5, services: [ssh]}\n",
            &["spec.crossEdgeProbability", "allowed: 0 to 1"],
        ),
        (
            "enum.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: DeckyShard\nmetadata: {name: s}\nspec: {worker: w, deckies: [{name: d1, services: [ssh, gopher]}]}\n",
            &[
                "spec.deckies[0].services[1]",
                "\"gopher\" is not allowed",
                "\"ssh\", \"http\"",
            ],
        ),
        (
            "name.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {name: Bad_Name}\nspec: {address: a}\n",
            &["metadata.name", "not a DNS label"],
        ),
        (
            "type.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {name: w}\nspec: {address: a, agentPort: \"8765\"}\n",
            &["spec.agentPort", "must be an integer", "remove the quotes"],
        ),
        (
            "lan.yaml",
            "apiVersion: decnet.io/v1alpha1\nkind: DeckyShard\nmetadata: {name: s}\nspec: {worker: w, networks: [{name: dmz, subnet: 10.1.0.0/24}], deckies: [{name: d1, services: [ssh], ips: {dmz: 10.2.0.5, lab: 10.1.0.6}}]}\n",
            &[
                "spec.deckies[0].ips.dmz",
                "outside the LAN's subnet",
                "spec.deckies[0].ips.lab",
                "not declared in spec.networks",
            ],
        ),
        (
            "version.yaml",
            "apiVersion: decnet.io/v1\nkind: Worker\nmetadata: {name: w}\nspec: {address: a}\n",
            &["apiVersion", "\"decnet.io/v1alpha1\""],
        ),
    ];
    for (file, bad, wants) in cases {
        let path = h.write(file, &good_then(bad));
        let err = h.fails(&["apply", "-f", &path]);
        for want in *wants {
            assert!(err.contains(want), "{file}: missing {want:?} in:\n{err}");
        }
        // Nothing from a failing file is applied, not even its good document.
        assert_eq!(h.count("wk"), 0, "{file} was half-applied");
    }
}

#[test]
fn a_bad_file_in_a_directory_does_not_block_the_others_but_fails_the_run() {
    let h = Home::new();
    let dir = h.0.path().join("manifests");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {name: a}\nspec: {address: 10.0.0.1}\n").unwrap();
    std::fs::write(dir.join("b.yaml"), "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {name: b}\nspec: {adress: 10.0.0.2}\n").unwrap();
    let out = h.run(&["apply", "-f", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("b.yaml")
            && err.contains("spec.adress")
            && err.contains("spec.address: required"),
        "{err}"
    );
    assert_eq!(
        h.ok(&["get", "wk", "-o", "name"]).trim(),
        "worker.decnet.io/a"
    );
}

#[test]
fn stdin_dry_run_and_delete() {
    let h = Home::new();
    let doc = "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {name: piped}\nspec: {address: 10.0.0.7}\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_decnet"))
        .args(["apply", "-f", "-", "--dry-run"])
        .env("DECNET_HOME", h.0.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "worker.decnet.io/piped created (dry run)"
    );
    assert_eq!(h.count("wk"), 0);

    let f = h.write("w.yaml", doc);
    h.ok(&["apply", "-f", &f]);
    assert_eq!(h.count("wk"), 1);
    assert_eq!(
        h.ok(&["delete", "-f", &f]).trim(),
        "worker.decnet.io/piped deleted"
    );
    assert_eq!(h.count("wk"), 0);
    let e = h.fails(&["delete", "wk", "piped"]);
    assert!(e.contains("not found"), "{e}");
    h.ok(&["apply", "-f", "examples/10-workers.yaml"]);
    let out = h.ok(&["delete", "wk", "local", "sensor-b"]);
    assert_eq!(out.matches("deleted").count(), 2, "{out}");
}

#[test]
fn prune_removes_only_applied_objects_matching_the_selector() {
    let h = Home::new();
    let w = |name: &str, team: &str| {
        format!(
            "apiVersion: decnet.io/v1alpha1\nkind: Worker\nmetadata: {{name: {name}, labels: {{team: {team}}}}}\nspec: {{address: 10.0.0.1}}\n"
        )
    };
    let dir = h.0.path().join("gitops");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), w("a", "blue")).unwrap();
    std::fs::write(dir.join("b.yaml"), w("b", "blue")).unwrap();
    let other = h.write("c.yaml", &w("c", "red"));
    let d = dir.to_str().unwrap();
    h.ok(&["apply", "-f", d, "--prune", "-l", "team=blue"]);
    h.ok(&["apply", "-f", &other]);
    std::fs::remove_file(dir.join("b.yaml")).unwrap();

    let dry = h.ok(&["apply", "-f", d, "--prune", "-l", "team=blue", "--dry-run"]);
    assert!(dry.contains("worker.decnet.io/b pruned (dry run)"), "{dry}");
    assert_eq!(h.count("wk"), 3);

    let out = h.ok(&["apply", "-f", d, "--prune", "-l", "team=blue"]);
    assert!(out.contains("worker.decnet.io/b pruned"), "{out}");
    let left = h.ok(&["get", "wk", "-o", "name"]);
    assert_eq!(left, "worker.decnet.io/a\nworker.decnet.io/c\n");

    // A broken file in the set disables pruning entirely.
    std::fs::write(dir.join("broken.yaml"), "kind: [").unwrap();
    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    let out = h.run(&["apply", "-f", d, "--prune", "-l", "team=blue"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prune skipped"));
    assert_eq!(h.count("wk"), 2, "nothing pruned when a file failed");
    let e = h.fails(&["apply", "-f", d, "--prune"]);
    assert!(e.contains("--selector"), "prune requires a selector: {e}");
}

#[test]
fn every_subcommand_has_help() {
    let h = Home::new();
    for sub in [
        vec!["--help"],
        vec!["apply", "--help"],
        vec!["get", "--help"],
        vec!["describe", "--help"],
        vec!["delete", "--help"],
        vec!["crds", "--help"],
    ] {
        let out = h.ok(&sub);
        assert!(out.contains("Usage:"), "{sub:?}: {out}");
    }
}
