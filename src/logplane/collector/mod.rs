//! The worker collector: follows the stdout of every decky container
//! (`decnet.io/managed=true`) through Docker's log stream and appends each
//! line to the durable local log file the forwarder ships.
//!
//! - Containers are found at start, from Docker's event stream (label
//!   filtered) as they start, and by a periodic re-list as a safety net; a
//!   removed container's follower ends and its cursor is dropped.
//! - A single [`writer::Writer`] appends whole lines, so containers never
//!   interleave, and keeps per-container cursors (last Docker timestamp
//!   written) that make a restart resume without writing a line twice.
//! - The pure rules (cursors, line assembly, crash recovery) are in
//!   [`cursor`].
//!
//! Lines a container printed and that were removed with it before the
//! collector read them are lost: Docker deletes a container's log with it.

pub mod cursor;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{
    EventsOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use self::cursor::{LineAssembler, split_timestamp};
use self::writer::{Cursors, Msg, Writer};
use super::{LogError, Result};
use crate::agent::plan::labels;

#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The local log file (what the forwarder tails).
    pub log_path: PathBuf,
    /// Per-container cursors.
    pub state_db: PathBuf,
    /// Longest line kept whole; longer ones are cut.
    pub max_line: usize,
    /// Safety-net re-list period (events can be missed while reconnecting).
    pub relist_every: Duration,
    /// Only containers labelled `decnet.io/worker=<owner>` (the agent's own).
    pub owner: Option<String>,
}

impl CollectorConfig {
    pub fn new(log_path: PathBuf, state_db: PathBuf) -> Self {
        CollectorConfig {
            log_path,
            state_db,
            max_line: 60 * 1024,
            relist_every: Duration::from_secs(10),
            owner: None,
        }
    }
}

/// A managed container as listed by Docker.
struct Seen {
    id: String,
    name: String,
    running: bool,
}

/// Managed containers, of `owner` only when set (agents sharing a Docker
/// daemon collect only their own deckies, like the executor manages them).
fn managed_filter(owner: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut label = vec![format!("{}=true", labels::MANAGED)];
    if let Some(w) = owner {
        label.push(format!("{}={w}", labels::WORKER));
    }
    HashMap::from([("label".to_string(), label)])
}

async fn list(docker: &Docker, owner: Option<&str>) -> Result<Vec<Seen>> {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&managed_filter(owner))
        .build();
    let list = docker.list_containers(Some(opts)).await?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            Some(Seen {
                id: c.id?,
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                running: matches!(
                    c.state,
                    Some(
                        ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::RESTARTING
                    )
                ),
            })
        })
        .collect())
}

/// Container lifecycle news for the supervisor.
enum News {
    Started {
        id: String,
        name: String,
    },
    Destroyed {
        id: String,
    },
    /// A follower's stream ended.
    FollowEnded {
        id: String,
    },
}

/// Runs until `shutdown` resolves; then the lines received so far are written.
pub async fn run(
    docker: Docker,
    cfg: CollectorConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let writer = Writer::open(&cfg.log_path, &cfg.state_db).await?;
    let cursors = writer.cursors();
    let (tx, rx) = mpsc::channel::<Msg>(4096);
    let writer_task = tokio::spawn(writer.run(rx));
    let (news_tx, mut news_rx) = mpsc::unbounded_channel::<News>();
    let events_task = tokio::spawn(watch_events(
        docker.clone(),
        cfg.owner.clone(),
        news_tx.clone(),
    ));
    tracing::info!(log = %cfg.log_path.display(), "collector following decky containers");

    let mut sup = Supervisor {
        docker: docker.clone(),
        cfg: cfg.clone(),
        cursors,
        tx,
        news: news_tx,
        followers: HashMap::new(),
        drained: HashSet::new(),
        session: 0,
    };
    let mut relist = tokio::time::interval(cfg.relist_every);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = relist.tick() => sup.relist().await,
            Some(n) = news_rx.recv() => sup.on_news(n).await,
        }
    }
    events_task.abort();
    for (_, h) in sup.followers.drain() {
        h.abort();
    }
    drop(sup);
    // The writer ends once the aborted followers dropped their senders.
    match tokio::time::timeout(Duration::from_secs(10), writer_task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(LogError::Protocol(format!("collector writer failed: {e}"))),
        Err(_) => Err(LogError::Protocol(
            "collector writer did not finish in time".into(),
        )),
    }
}

struct Supervisor {
    docker: Docker,
    cfg: CollectorConfig,
    cursors: Cursors,
    tx: mpsc::Sender<Msg>,
    news: mpsc::UnboundedSender<News>,
    followers: HashMap<String, JoinHandle<()>>,
    /// Stopped containers already read to their end.
    drained: HashSet<String>,
    session: u64,
}

impl Supervisor {
    fn follow(&mut self, id: &str, name: &str) {
        if self.followers.contains_key(id) {
            return;
        }
        self.session += 1;
        let since = self
            .cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map_or(0, |c| c.since_secs());
        let follower = Follower {
            docker: self.docker.clone(),
            id: Arc::from(id),
            name: Arc::from(name),
            session: self.session,
            max_line: self.cfg.max_line,
            tx: self.tx.clone(),
        };
        let news = self.news.clone();
        let id_owned = id.to_string();
        let span = tracing::info_span!("follow", container = %name, id = %&id[..id.len().min(12)]);
        tracing::debug!(parent: &span, since, "following container log");
        let h = tokio::spawn(
            async move {
                follower.run(since).await;
                let _ = news.send(News::FollowEnded { id: id_owned });
            }
            .instrument(span),
        );
        self.followers.insert(id.to_string(), h);
    }

    async fn forget(&mut self, id: String) {
        self.drained.remove(&id);
        let _ = self
            .tx
            .send(Msg::Forget {
                container: Arc::from(id.as_str()),
            })
            .await;
    }

    async fn relist(&mut self) {
        let seen = match list(&self.docker, self.cfg.owner.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "listing decky containers failed");
                return;
            }
        };
        let present: HashSet<&str> = seen.iter().map(|s| s.id.as_str()).collect();
        let stale: Vec<String> = self
            .cursors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|id| !present.contains(id.as_str()) && !self.followers.contains_key(*id))
            .cloned()
            .collect();
        for s in &seen {
            if s.running {
                self.drained.remove(&s.id);
            }
            if !self.drained.contains(&s.id) {
                self.follow(&s.id, &s.name);
            }
        }
        for id in stale {
            tracing::info!(id = %id, "container gone; dropping its cursor");
            self.forget(id).await;
        }
    }

    async fn on_news(&mut self, news: News) {
        match news {
            News::Started { id, name } => {
                self.drained.remove(&id);
                self.follow(&id, &name);
            }
            News::Destroyed { id } => {
                if !self.followers.contains_key(&id) {
                    self.forget(id).await;
                }
            }
            News::FollowEnded { id } => {
                self.followers.remove(&id);
                match self.docker.inspect_container(&id, None).await {
                    Err(e) if crate::agent::error::is_not_found(&e) => self.forget(id).await,
                    Err(e) => {
                        tracing::warn!(error = %e, id = %id, "inspecting a container failed; the re-list retries")
                    }
                    Ok(c) => {
                        let running = c.state.and_then(|s| s.running).unwrap_or(false);
                        let name = c
                            .name
                            .unwrap_or_default()
                            .trim_start_matches('/')
                            .to_string();
                        if running {
                            // Stream cut while running (daemon restart…): go on.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            self.follow(&id, &name);
                        } else {
                            self.drained.insert(id);
                        }
                    }
                }
            }
        }
    }
}

/// Docker's event stream (managed containers only), reconnecting forever.
async fn watch_events(docker: Docker, owner: Option<String>, news: mpsc::UnboundedSender<News>) {
    let mut filters = managed_filter(owner.as_deref());
    filters.insert("type".into(), vec!["container".into()]);
    filters.insert("event".into(), vec!["start".into(), "destroy".into()]);
    loop {
        let opts = EventsOptionsBuilder::default().filters(&filters).build();
        let mut stream = docker.events(Some(opts));
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(error = %e, "Docker event stream failed; reconnecting");
                    break;
                }
            };
            let Some(actor) = ev.actor else { continue };
            let Some(id) = actor.id else { continue };
            let name = actor
                .attributes
                .and_then(|mut a| a.remove("name"))
                .unwrap_or_default();
            let n = match ev.action.as_deref() {
                Some("start") => News::Started { id, name },
                Some("destroy") => News::Destroyed { id },
                _ => continue,
            };
            if news.send(n).is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads one container's stdout log from `since` to its end (or forever while it runs).
struct Follower {
    docker: Docker,
    id: Arc<str>,
    name: Arc<str>,
    session: u64,
    max_line: usize,
    tx: mpsc::Sender<Msg>,
}

impl Follower {
    async fn run(self, since: i32) {
        let opts = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(false)
            .timestamps(true)
            .since(since)
            .build();
        let mut stream = self.docker.logs(&self.id, Some(opts));
        let mut asm = LineAssembler::new(self.max_line);
        let mut lines = Vec::new();
        while let Some(item) = stream.next().await {
            let message = match item {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => message,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "container log stream failed");
                    break;
                }
            };
            let Some((ts, text)) = split_timestamp(&message) else {
                tracing::warn!("log message without a Docker timestamp skipped");
                continue;
            };
            asm.feed(text, |l| lines.push(l.to_vec()));
            for line in lines.drain(..) {
                let msg = Msg::Line {
                    container: self.id.clone(),
                    name: self.name.clone(),
                    session: self.session,
                    ts,
                    line,
                };
                if self.tx.send(msg).await.is_err() {
                    return;
                }
            }
        }
        if asm.has_partial() {
            tracing::warn!("container log ended inside a line; the partial line is not written");
        }
    }
}
