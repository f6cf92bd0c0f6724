//! Enrollment on the master: issuing a worker's certificate and creating its Worker resource,
//! imperatively (bundle written to a directory) or as a one-shot bootstrap token.
//!
//! Crash safety: the Worker is created already carrying its certificate fingerprint in the
//! `decnet.io/cert-fingerprint` annotation (a create cannot set status), then its status is
//! written. If the status write fails the Worker is removed again; if writing the bundle fails
//! the certificate is revoked and the Worker removed. So no Worker exists without a record of
//! which certificate it was given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::api::{Kind, ObjectMeta, Swarm, Worker, WorkerPhase, WorkerSpec, WorkerStatus};
use crate::master::MasterTls;
use crate::pki::{Fingerprint, WorkerName};
use crate::store::{Api, Store, StoreError};

use super::EnrollError;
use super::pin::spki_sha256_base64;
use super::script::bootstrap_command;
use super::tarball::BundlePems;
use super::token::Token;
use super::tokens::{NewToken, TokenTable};

/// Annotation holding the SHA-256 fingerprint of the certificate issued at enrollment.
pub const FINGERPRINT_ANNOTATION: &str = "decnet.io/cert-fingerprint";
/// The condition enrollment maintains on a Worker.
pub const ENROLLED_CONDITION: &str = "Enrolled";

/// Used when no Swarm exists (the CA/Browser-forum cap the Swarm schema also enforces).
pub const DEFAULT_LEAF_DAYS: u32 = 825;
/// Used when no Swarm exists.
pub const DEFAULT_TOKEN_TTL_SECONDS: u32 = 300;

/// What the operator asked for.
#[derive(Clone, Debug)]
pub struct WorkerRequest {
    pub name: String,
    pub address: String,
    pub sans: Vec<String>,
    /// `None`: the Swarm's `agentPort`, else 8765.
    pub agent_port: Option<u16>,
    pub labels: BTreeMap<String, String>,
}

/// Fleet settings enrollment reads from the first Swarm (by name), with defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SwarmSettings {
    pub leaf_validity_days: u32,
    pub token_ttl_seconds: u32,
    pub master_address: Option<String>,
    pub enroll_port: u16,
    pub agent_port: u16,
}

impl SwarmSettings {
    pub fn from_swarm(swarm: Option<&Swarm>) -> SwarmSettings {
        match swarm {
            Some(s) => SwarmSettings {
                leaf_validity_days: s.spec.ca.leaf_validity_days,
                token_ttl_seconds: s.spec.ca.enrollment_token_ttl_seconds,
                master_address: Some(s.spec.master_address.clone()),
                enroll_port: s.spec.enroll_port,
                agent_port: s.spec.agent_port,
            },
            None => {
                // The Swarm type's own serde defaults, so they have one source of truth.
                let defaults: Option<crate::api::SwarmSpec> =
                    serde_json::from_value(serde_json::json!({ "masterAddress": "" })).ok();
                SwarmSettings {
                    leaf_validity_days: DEFAULT_LEAF_DAYS,
                    token_ttl_seconds: DEFAULT_TOKEN_TTL_SECONDS,
                    master_address: None,
                    enroll_port: defaults.as_ref().map_or(8443, |d| d.enroll_port),
                    agent_port: defaults.as_ref().map_or(8765, |d| d.agent_port),
                }
            }
        }
    }

    pub async fn load(store: &Store) -> Result<SwarmSettings, EnrollError> {
        let swarm = Api::<Swarm>::new(store.clone()).first().await?;
        Ok(Self::from_swarm(swarm.as_ref()))
    }
}

/// Parses one `--label key=value`.
pub fn parse_label(s: &str) -> Result<(String, String), EnrollError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(EnrollError::Invalid(format!(
            "--label {s:?}: expected key=value, e.g. --label zone=dmz"
        ))),
    }
}

/// Builds (and validates against the Worker CRD schema) the Worker to create. Pure.
pub fn build_worker(
    req: &WorkerRequest,
    settings: &SwarmSettings,
    fingerprint: Option<&Fingerprint>,
) -> Result<Worker, EnrollError> {
    WorkerName::new(&req.name).map_err(|e| EnrollError::Invalid(e.to_string()))?;
    let spec = WorkerSpec {
        address: req.address.clone(),
        agent_port: req.agent_port.unwrap_or(settings.agent_port),
        sans: req.sans.clone(),
        capacity: None,
        weight: 1,
        unschedulable: false,
    };
    let mut worker = Worker::new(&req.name, spec);
    worker.metadata = ObjectMeta {
        name: Some(req.name.clone()),
        labels: (!req.labels.is_empty()).then(|| req.labels.clone()),
        annotations: fingerprint
            .map(|fp| BTreeMap::from([(FINGERPRINT_ANNOTATION.to_string(), fp.to_string())])),
        ..ObjectMeta::default()
    };
    let doc = serde_json::to_value(&worker).map_err(|e| EnrollError::Invalid(e.to_string()))?;
    let errors = crate::api::validate::validate_document(Kind::Worker, &doc);
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(EnrollError::Invalid(format!(
            "worker {:?}: {}",
            req.name,
            list.join("; ")
        )));
    }
    Ok(worker)
}

/// The status of a freshly enrolled (or bootstrapped) Worker. Pure.
pub fn enrollment_status(
    previous: Option<&WorkerStatus>,
    phase: WorkerPhase,
    fingerprint: &Fingerprint,
    generation: Option<i64>,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> WorkerStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.phase = Some(phase);
    status.cert_fingerprint = Some(fingerprint.to_string());
    status.observed_generation = generation;
    crate::api::set_condition(
        &mut status.conditions,
        ENROLLED_CONDITION,
        phase != WorkerPhase::Pending,
        reason,
        message,
        generation,
        now,
    );
    status
}

/// Refusal shared by both flows (and the race where the name appears between check and create).
fn already_exists(name: &str) -> EnrollError {
    EnrollError::AlreadyExists {
        name: name.to_string(),
    }
}

async fn refuse_existing(api: &Api<Worker>, name: &str) -> Result<(), EnrollError> {
    match api.get_opt(name).await? {
        Some(_) => Err(already_exists(name)),
        None => Ok(()),
    }
}

/// Creates `worker` and writes its status (retrying on conflicts: a controller may write the
/// new Worker's status first); if that fails the Worker is removed again.
async fn create_with_status(
    api: &Api<Worker>,
    worker: &Worker,
    status: impl Fn(&Worker, &WorkerStatus) -> WorkerStatus,
) -> Result<Worker, EnrollError> {
    let name = worker.metadata.name.clone().unwrap_or_default();
    api.create(worker).await.map_err(|e| match e {
        StoreError::AlreadyExists { .. } | StoreError::Terminating { .. } => already_exists(&name),
        e => e.into(),
    })?;
    let written = update_status(api, &name, |w, st| {
        *st = status(w, st);
        true
    })
    .await
    .and_then(|w| {
        w.ok_or_else(|| StoreError::NotFound {
            kind: Kind::Worker,
            name: name.clone(),
        })
    });
    match written {
        Ok(w) => Ok(w),
        Err(source) => {
            let cleanup = remove_worker(api, &name).await;
            tracing::error!(worker = %name, error = %source, cleanup = ?cleanup, "writing the enrollment status failed");
            Err(EnrollError::StatusWrite {
                cleanup: describe_cleanup(&name, cleanup),
                name,
                source: Box::new(source),
            })
        }
    }
}

async fn remove_worker(api: &Api<Worker>, name: &str) -> Result<(), StoreError> {
    api.delete(name).await.map(|_| ())
}

fn describe_cleanup(name: &str, r: Result<(), StoreError>) -> String {
    match r {
        Ok(()) => "the Worker was removed again; run the command again".into(),
        Err(e) => format!(
            "removing the Worker failed too ({e}); remove it with `decnet delete worker {name}` and run the command again"
        ),
    }
}

/// Result of an imperative enrollment.
#[derive(Debug)]
pub struct Enrolled {
    pub worker: Worker,
    pub fingerprint: Fingerprint,
    pub out_dir: PathBuf,
}

/// Imperative enrollment: issues the certificate, creates the Worker (phase Enrolled) and
/// writes the bundle to `out_dir` (key 0600).
pub async fn enroll(
    master: &MasterTls,
    req: &WorkerRequest,
    out_dir: &Path,
) -> Result<Enrolled, EnrollError> {
    let api = Api::<Worker>::new(master.store.clone());
    let settings = SwarmSettings::load(&master.store).await?;
    let spec = build_worker(req, &settings, None)?.spec; // validates before paying for a key
    refuse_existing(&api, &req.name).await?;
    let bundle = master
        .issue_worker(&req.name, &spec, settings.leaf_validity_days)
        .await?;
    let fp = bundle.fingerprint();
    let worker = build_worker(req, &settings, Some(&fp))?;
    let message = format!(
        "certificate {fp} issued; bundle written to {}",
        out_dir.display()
    );
    let worker = create_with_status(&api, &worker, |w, prev| {
        enrollment_status(
            Some(prev),
            WorkerPhase::Enrolled,
            &fp,
            w.metadata.generation,
            "Issued",
            &message,
            jiff::Timestamp::now(),
        )
    })
    .await?;

    let write = {
        let (bundle, dir) = (bundle.clone(), out_dir.to_path_buf());
        tokio::task::spawn_blocking(move || bundle.write(&dir))
            .await
            .map_err(|e| EnrollError::Join(e.to_string()))
    };
    if let Err(e) = write.and_then(|r| r.map_err(EnrollError::from)) {
        // The certificate may be partly on disk: make it worthless, then forget the Worker.
        let revoked = master
            .revoke(
                &fp.to_string(),
                &req.name,
                "enrollment aborted: bundle not written",
            )
            .await;
        let removed = remove_worker(&api, &req.name).await;
        tracing::error!(worker = %req.name, error = %e, ?revoked, ?removed, "writing the bundle failed");
        return Err(EnrollError::BundleWrite {
            name: req.name.clone(),
            dir: out_dir.to_path_buf(),
            reason: e.to_string(),
        });
    }
    record_event(&api, &worker, "Normal", "Enrolled", &message).await;
    tracing::info!(worker = %req.name, fingerprint = %fp, dir = %out_dir.display(), "worker enrolled");
    Ok(Enrolled {
        worker,
        fingerprint: fp,
        out_dir: out_dir.to_path_buf(),
    })
}

/// Where the printed command points. Flags override the Swarm.
#[derive(Clone, Debug, Default)]
pub struct BootstrapOptions {
    pub master_address: Option<String>,
    pub enroll_port: Option<u16>,
}

/// Result of a bootstrap enrollment.
#[derive(Debug)]
pub struct Bootstrap {
    pub worker: Worker,
    pub fingerprint: Fingerprint,
    /// `curl … | sudo bash`, to run on the worker.
    pub command: String,
    pub token: Token,
    pub expires_at: jiff::Timestamp,
    pub ttl_seconds: u32,
}

/// Resolves the endpoint put in the command. Pure.
pub fn master_endpoint(
    settings: &SwarmSettings,
    opts: &BootstrapOptions,
) -> Result<(String, u16), EnrollError> {
    let address = opts
        .master_address
        .clone()
        .or_else(|| settings.master_address.clone())
        .ok_or(EnrollError::NoMasterAddress)?;
    Ok((address, opts.enroll_port.unwrap_or(settings.enroll_port)))
}

/// One-shot bootstrap: issues the certificate, stores it under a fresh token (hash only),
/// creates the Worker (phase Pending) and returns the command for the worker.
pub async fn bootstrap(
    master: &MasterTls,
    req: &WorkerRequest,
    opts: &BootstrapOptions,
) -> Result<Bootstrap, EnrollError> {
    let api = Api::<Worker>::new(master.store.clone());
    let settings = SwarmSettings::load(&master.store).await?;
    let (address, port) = master_endpoint(&settings, opts)?;
    let spec = build_worker(req, &settings, None)?.spec;
    refuse_existing(&api, &req.name).await?;
    let pin = spki_sha256_base64(master.bundle.cert_der()).map_err(EnrollError::Invalid)?;
    let bundle = master
        .issue_worker(&req.name, &spec, settings.leaf_validity_days)
        .await?;
    let fp = bundle.fingerprint();
    let token = Token::generate();
    let now = jiff::Timestamp::now();
    let ttl = settings.token_ttl_seconds;
    let expires_at = now + jiff::SignedDuration::from_secs(i64::from(ttl));

    let worker = build_worker(req, &settings, Some(&fp))?;
    let message = format!(
        "certificate {fp} issued; waiting for the worker to fetch it (one-shot token, expires {})",
        expires_at.round(jiff::Unit::Second).unwrap_or(expires_at)
    );
    let worker = create_with_status(&api, &worker, |w, prev| {
        enrollment_status(
            Some(prev),
            WorkerPhase::Pending,
            &fp,
            w.metadata.generation,
            "AwaitingBootstrap",
            &message,
            now,
        )
    })
    .await?;

    let tokens = TokenTable::new(master.store.pool().clone());
    let pems = BundlePems {
        ca_pem: bundle.ca_pem().to_string(),
        cert_pem: bundle.cert_pem().to_string(),
        key_pem: bundle.key_pem().to_string(),
    };
    let inserted = tokens
        .insert(&NewToken {
            token_sha256: &token.hash(),
            worker: &req.name,
            fingerprint: &fp.to_string(),
            pems: &pems,
            now: now.as_second(),
            expires_at: expires_at.as_second(),
        })
        .await;
    if let Err(source) = inserted {
        let cleanup = remove_worker(&api, &req.name).await;
        tracing::error!(worker = %req.name, error = %source, "storing the enrollment token failed");
        return Err(EnrollError::TokenWrite {
            name: req.name.clone(),
            source: Box::new(source),
            cleanup: describe_cleanup(&req.name, cleanup),
        });
    }
    record_event(&api, &worker, "Normal", "BootstrapTokenIssued", &message).await;
    tracing::info!(worker = %req.name, fingerprint = %fp, ttl_seconds = ttl, "one-shot enrollment token issued");
    Ok(Bootstrap {
        command: bootstrap_command(&address, port, token.expose(), &pin),
        worker,
        fingerprint: fp,
        token,
        expires_at,
        ttl_seconds: ttl,
    })
}

/// Best effort: an event is an audit aid, never a reason to fail an enrollment.
pub(crate) async fn record_event(
    api: &Api<Worker>,
    worker: &Worker,
    type_: &str,
    reason: &str,
    message: &str,
) {
    if let Err(e) = api.event(worker, type_, reason, message).await {
        let name = worker.metadata.name.as_deref().unwrap_or_default();
        tracing::warn!(worker = %name, error = %e, reason, "recording an event failed");
    }
}

/// Read-modify-write of a Worker's status, retried on conflicts with concurrent writers
/// (the controller). `f` returns `false` to leave the Worker untouched. `None`: no such Worker.
pub(crate) async fn update_status(
    api: &Api<Worker>,
    name: &str,
    mut f: impl FnMut(&Worker, &mut WorkerStatus) -> bool,
) -> Result<Option<Worker>, StoreError> {
    let mut attempts = 0;
    loop {
        let Some(mut w) = api.get_opt(name).await? else {
            return Ok(None);
        };
        let mut status = w.status.clone().unwrap_or_default();
        if !f(&w, &mut status) {
            return Ok(Some(w));
        }
        w.status = Some(status);
        match api.replace_status(&w).await {
            Ok(w) => return Ok(Some(w)),
            Err(e) if e.is_conflict() && attempts < 5 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> WorkerRequest {
        WorkerRequest {
            name: "w1".into(),
            address: "10.0.0.5".into(),
            sans: vec!["w1.lan".into()],
            agent_port: None,
            labels: BTreeMap::from([("zone".to_string(), "dmz".to_string())]),
        }
    }

    #[test]
    fn labels_parse() {
        assert_eq!(
            parse_label("zone=dmz").unwrap(),
            ("zone".to_string(), "dmz".to_string())
        );
        assert_eq!(parse_label("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=x").is_err());
    }

    #[test]
    fn worker_from_request_and_defaults() {
        let s = SwarmSettings::from_swarm(None);
        assert_eq!(s.leaf_validity_days, 825);
        assert_eq!(s.token_ttl_seconds, 300);
        let fp = Fingerprint::of_der(b"x");
        let w = build_worker(&req(), &s, Some(&fp)).unwrap();
        assert_eq!(w.spec.agent_port, 8765);
        assert_eq!(w.spec.sans, vec!["w1.lan".to_string()]);
        assert_eq!(w.metadata.labels.unwrap()["zone"], "dmz");
        assert_eq!(
            w.metadata.annotations.unwrap()[FINGERPRINT_ANNOTATION],
            fp.to_string()
        );
    }

    #[test]
    fn invalid_requests_are_refused_before_anything_is_issued() {
        let s = SwarmSettings::from_swarm(None);
        let mut r = req();
        r.name = "Bad_Name".into();
        assert!(build_worker(&r, &s, None).is_err());
        let mut r = req();
        r.labels.insert("bad key!".into(), "v".into());
        let e = build_worker(&r, &s, None).unwrap_err().to_string();
        assert!(e.contains("metadata.labels"), "{e}");
        let mut r = req();
        r.address = String::new();
        assert!(build_worker(&r, &s, None).is_err());
    }

    #[test]
    fn endpoint_resolution() {
        let none = SwarmSettings::from_swarm(None);
        let e = master_endpoint(&none, &BootstrapOptions::default()).unwrap_err();
        assert!(e.to_string().contains("--master-address"), "{e}");
        let opts = BootstrapOptions {
            master_address: Some("10.9.9.9".into()),
            enroll_port: None,
        };
        assert_eq!(
            master_endpoint(&none, &opts).unwrap(),
            ("10.9.9.9".to_string(), 8443)
        );
        let mut swarm = none.clone();
        swarm.master_address = Some("master.lan".into());
        swarm.enroll_port = 9443;
        assert_eq!(
            master_endpoint(&swarm, &BootstrapOptions::default()).unwrap(),
            ("master.lan".to_string(), 9443)
        );
        let opts = BootstrapOptions {
            master_address: None,
            enroll_port: Some(1234),
        };
        assert_eq!(
            master_endpoint(&swarm, &opts).unwrap(),
            ("master.lan".to_string(), 1234)
        );
    }

    #[test]
    fn status_sets_condition_and_fingerprint() {
        let fp = Fingerprint::of_der(b"cert");
        let t = jiff::Timestamp::from_second(1_000).unwrap();
        let pending = enrollment_status(
            None,
            WorkerPhase::Pending,
            &fp,
            Some(1),
            "AwaitingBootstrap",
            "m",
            t,
        );
        assert_eq!(pending.conditions[0].status, "False");
        let done = enrollment_status(
            Some(&pending),
            WorkerPhase::Enrolled,
            &fp,
            Some(1),
            "BundleFetched",
            "m2",
            t,
        );
        assert_eq!(done.phase, Some(WorkerPhase::Enrolled));
        assert_eq!(
            done.cert_fingerprint.as_deref(),
            Some(fp.to_string().as_str())
        );
        assert_eq!(done.observed_generation, Some(1));
        assert_eq!(done.conditions.len(), 1);
        assert_eq!(done.conditions[0].type_, "Enrolled");
        assert_eq!(done.conditions[0].status, "True");
    }
}
