use std::path::Path;

use serde_json::{Value, json};

use super::output::{age, display_at, str_at, table, to_yaml};
use super::{CliError, open_store};
use crate::api::Kind;
use crate::store::Selector;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
    Wide,
    Name,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Kinds: swarms, workers (wk), topologies (topo), deckyshards (ds).\n\
    Examples:\n  decnet get wk\n  decnet get ds -o wide\n  decnet get worker w1 -o yaml\n  decnet get wk -l zone=eu"
)]
pub struct GetArgs {
    /// Kind: Swarm, Worker (wk), Topology (topo), DeckyShard (ds).
    pub kind: String,
    /// One object by name; all of the kind when omitted.
    pub name: Option<String>,
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<OutputFormat>,
    /// Label selector, e.g. env=prod,zone in (a,b).
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
}

pub async fn run(home: &Path, args: GetArgs) -> Result<(), CliError> {
    let kind = Kind::parse(&args.kind).map_err(|e| CliError::Usage(e.to_string()))?;
    let selector = match &args.selector {
        Some(s) => Selector::parse(s).map_err(|e| CliError::Usage(e.to_string()))?,
        None => Selector::default(),
    };
    let store = open_store(home).await?;
    let objects = match &args.name {
        Some(name) => match store.get(kind, name).await? {
            Some(o) => vec![o],
            None => {
                return Err(CliError::Other(format!(
                    "{kind} {name:?} not found; list them with: decnet get {}",
                    kind.plural()
                )));
            }
        },
        None => store.list(kind, &selector).await?,
    };
    print!(
        "{}",
        render(kind, &objects, args.name.is_some(), args.output)?
    );
    Ok(())
}

/// Renders objects as kubectl would; pure, for tests.
pub fn render(
    kind: Kind,
    objects: &[Value],
    single: bool,
    output: Option<OutputFormat>,
) -> Result<String, CliError> {
    let as_list = || json!({"apiVersion": "v1", "kind": "List", "items": objects});
    Ok(match output {
        Some(OutputFormat::Json) => {
            let v = if single {
                objects[0].clone()
            } else {
                as_list()
            };
            serde_json::to_string_pretty(&v).map_err(|e| CliError::Other(e.to_string()))? + "\n"
        }
        Some(OutputFormat::Yaml) => to_yaml(&if single {
            objects[0].clone()
        } else {
            as_list()
        }),
        Some(OutputFormat::Name) => objects
            .iter()
            .map(|o| {
                format!(
                    "{}.decnet.io/{}\n",
                    kind.as_str().to_lowercase(),
                    str_at(o, "/metadata/name")
                )
            })
            .collect(),
        None | Some(OutputFormat::Wide) => {
            if objects.is_empty() {
                return Ok(format!("No {} found.\n", kind.plural()));
            }
            let wide = matches!(output, Some(OutputFormat::Wide));
            let (header, rows) = columns(kind, objects, wide);
            table(&header, &rows)
        }
    })
}

fn columns(kind: Kind, objects: &[Value], wide: bool) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let phase = |o: &Value| {
        let p = display_at(o, "/status/phase");
        if o.pointer("/metadata/deletionTimestamp").is_some() {
            "Terminating".to_string()
        } else if p.is_empty() {
            "Pending".to_string()
        } else {
            p
        }
    };
    let created = |o: &Value| {
        age(o
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str))
    };
    let labels = |o: &Value| {
        o.pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let mut header: Vec<&'static str> = match kind {
        Kind::Swarm => vec!["NAME", "MASTER", "PHASE", "WORKERS", "AGE"],
        Kind::Worker => vec!["NAME", "ADDRESS", "PHASE", "DECKIES", "HEARTBEAT", "AGE"],
        Kind::Topology => vec!["NAME", "DEPTH", "BRANCHING", "PHASE", "AGE"],
        Kind::DeckyShard => vec!["NAME", "WORKER", "READY", "PHASE", "AGE"],
    };
    if wide {
        header.extend(match kind {
            Kind::Swarm => vec!["LISTENER", "STRATEGY"],
            Kind::Worker => vec!["PORT", "FINGERPRINT", "LABELS"],
            Kind::Topology => vec!["DECKIES/LAN", "SERVICES", "SEED"],
            Kind::DeckyShard => vec!["LANS", "DECKY NAMES"],
        });
    }
    let rows = objects
        .iter()
        .map(|o| {
            let name = str_at(o, "/metadata/name").to_string();
            let mut row = match kind {
                Kind::Swarm => vec![
                    name,
                    display_at(o, "/spec/masterAddress"),
                    phase(o),
                    display_at(o, "/status/activeWorkers"),
                    created(o),
                ],
                Kind::Worker => vec![
                    name,
                    display_at(o, "/spec/address"),
                    phase(o),
                    display_at(o, "/status/deckies"),
                    o.pointer("/status/lastHeartbeat")
                        .and_then(Value::as_str)
                        .map(|t| format!("{} ago", age(Some(t))))
                        .unwrap_or_default(),
                    created(o),
                ],
                Kind::Topology => vec![
                    name,
                    display_at(o, "/spec/depth"),
                    display_at(o, "/spec/branching"),
                    phase(o),
                    created(o),
                ],
                Kind::DeckyShard => {
                    let total = o
                        .pointer("/spec/deckies")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    let ready = o
                        .pointer("/status/readyDeckies")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    vec![
                        name,
                        display_at(o, "/spec/worker"),
                        format!("{ready}/{total}"),
                        phase(o),
                        created(o),
                    ]
                }
            };
            if wide {
                row.extend(match kind {
                    Kind::Swarm => vec![
                        display_at(o, "/spec/listenerPort"),
                        display_at(o, "/spec/scheduling/strategy"),
                    ],
                    Kind::Worker => vec![
                        display_at(o, "/spec/agentPort"),
                        display_at(o, "/status/certFingerprint"),
                        labels(o),
                    ],
                    Kind::Topology => vec![
                        display_at(o, "/spec/deckiesPerLan"),
                        o.pointer("/spec/services")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .unwrap_or_default(),
                        display_at(o, "/spec/seed"),
                    ],
                    Kind::DeckyShard => vec![
                        o.pointer("/spec/networks")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .map(|n| str_at(n, "/name"))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .unwrap_or_default(),
                        o.pointer("/spec/deckies")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .map(|d| str_at(d, "/name"))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .unwrap_or_default(),
                    ],
                });
            }
            row
        })
        .collect();
    (header, rows)
}
