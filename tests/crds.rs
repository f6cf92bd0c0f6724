//! `crds/*.yaml` must equal what the code generates. Regenerate with
//! `UPDATE_CRDS=1 cargo test --test crds` after changing a resource type.

use std::path::PathBuf;

use decnet::api::Kind;
use decnet::cli::crds;

fn path(kind: Kind) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crds")
        .join(format!("{}.{}.yaml", kind.plural(), decnet::api::GROUP))
}

#[test]
fn checked_in_crds_match_the_code() {
    let update = std::env::var_os("UPDATE_CRDS").is_some();
    let mut drifted = Vec::new();
    for kind in Kind::ALL {
        let generated = crds::render(kind).unwrap();
        let p = path(kind);
        if update {
            std::fs::write(&p, &generated).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&p).unwrap_or_default();
        if on_disk != generated {
            drifted.push(p.display().to_string());
        }
    }
    assert!(
        drifted.is_empty(),
        "CRDs drifted from the code: {drifted:?}; run `UPDATE_CRDS=1 cargo test --test crds` and commit crds/"
    );
}

#[test]
fn crds_have_status_subresource_and_validation() {
    for kind in Kind::ALL {
        let crd = kind.crd();
        assert_eq!(crd.spec.group, "decnet.io");
        assert_eq!(crd.spec.scope, "Cluster");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind} has no status subresource"
        );
        let schema = kind.schema();
        let status = schema
            .pointer("/properties/status/properties")
            .expect("status schema");
        for field in ["conditions", "observedGeneration", "phase"] {
            assert!(status.get(field).is_some(), "{kind}.status lacks {field}");
        }
        assert_eq!(
            schema
                .pointer("/properties/status/properties/conditions/x-kubernetes-list-type")
                .and_then(|v| v.as_str()),
            Some("map"),
            "{kind} conditions must be a map-list keyed by type"
        );
    }
    let topo = Kind::Topology.schema();
    assert_eq!(
        topo.pointer("/properties/spec/properties/depth/minimum")
            .and_then(|v| v.as_f64()),
        Some(1.0)
    );
    assert_eq!(
        topo.pointer("/properties/spec/properties/depth/maximum")
            .and_then(|v| v.as_f64()),
        Some(16.0)
    );
    assert_eq!(
        topo.pointer("/properties/spec/properties/branching/maximum")
            .and_then(|v| v.as_f64()),
        Some(8.0)
    );
    assert_eq!(
        topo.pointer("/properties/spec/properties/crossEdgeProbability/maximum")
            .and_then(|v| v.as_f64()),
        Some(1.0)
    );
    let shard = Kind::DeckyShard.schema();
    assert!(
        shard
            .pointer("/properties/spec/properties/deckies/items/properties/name/pattern")
            .and_then(|v| v.as_str())
            .is_some_and(|p| p.starts_with("^[a-z0-9]")),
        "decky names are DNS labels"
    );
}

#[test]
fn decnet_crds_prints_all_four() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_decnet"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for kind in Kind::ALL {
        assert!(
            text.contains(&format!("name: {}.decnet.io", kind.plural())),
            "{kind} missing"
        );
        assert!(text.contains(&crds::render(kind).unwrap()));
    }
}
