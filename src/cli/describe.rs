use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::output::{age, display_at, str_at, table, to_yaml};
use super::{CliError, open_store};
use crate::api::Kind;
use crate::store::Event;

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// Kind: Swarm, Worker (wk), Topology (topo), DeckyShard (ds).
    pub kind: String,
    pub name: String,
}

pub async fn run(home: &Path, args: DescribeArgs) -> Result<(), CliError> {
    let kind = Kind::parse(&args.kind).map_err(|e| CliError::Usage(e.to_string()))?;
    let store = open_store(home).await?;
    let Some(obj) = store.get(kind, &args.name).await? else {
        return Err(CliError::Other(format!(
            "{kind} {:?} not found; list them with: decnet get {}",
            args.name,
            kind.plural()
        )));
    };
    let events = store.events(kind, &args.name, 20).await?;
    print!("{}", render(kind, &obj, &events));
    Ok(())
}

fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

fn map_line(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n             "),
        _ => "<none>".into(),
    }
}

/// kubectl-describe style text; pure, for tests.
pub fn render(kind: Kind, obj: &Value, events: &[Event]) -> String {
    let mut s = String::new();
    let m = |p: &str| display_at(obj, &format!("/metadata/{p}"));
    let _ = writeln!(s, "Name:        {}", m("name"));
    let _ = writeln!(s, "Kind:        {kind}");
    let _ = writeln!(s, "API Version: {}", crate::api::API_VERSION);
    let _ = writeln!(
        s,
        "Labels:      {}",
        map_line(obj.pointer("/metadata/labels"))
    );
    let _ = writeln!(
        s,
        "Annotations: {}",
        map_line(obj.pointer("/metadata/annotations"))
    );
    let created = str_at(obj, "/metadata/creationTimestamp");
    let _ = writeln!(s, "Created:     {created} ({} ago)", age(Some(created)));
    let _ = writeln!(s, "UID:         {}", m("uid"));
    let _ = writeln!(s, "Generation:  {}", m("generation"));
    let _ = writeln!(s, "Resource Version: {}", m("resourceVersion"));
    if let Some(f) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    {
        let names: Vec<&str> = f.iter().filter_map(Value::as_str).collect();
        let _ = writeln!(s, "Finalizers:  [{}]", names.join(", "));
    }
    if let Some(t) = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
    {
        let _ = writeln!(s, "Deleting:    since {t} (waiting for finalizers)");
    }
    if let Some(owners) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    {
        for o in owners {
            let _ = writeln!(
                s,
                "Owned By:    {}/{}",
                str_at(o, "/kind"),
                str_at(o, "/name")
            );
        }
    }
    let _ = writeln!(s, "Spec:");
    s.push_str(&indent(
        &to_yaml(obj.get("spec").unwrap_or(&Value::Null)),
        2,
    ));
    let _ = writeln!(s, "Status:");
    match obj.get("status") {
        Some(status) => {
            let mut rest = status.clone();
            if let Some(o) = rest.as_object_mut() {
                o.remove("conditions");
            }
            s.push_str(&indent(&to_yaml(&rest), 2));
            if let Some(conds) = status.get("conditions").and_then(Value::as_array) {
                let _ = writeln!(s, "  Conditions:");
                let rows: Vec<Vec<String>> = conds
                    .iter()
                    .map(|c| {
                        vec![
                            str_at(c, "/type").into(),
                            str_at(c, "/status").into(),
                            str_at(c, "/reason").into(),
                            age(c.get("lastTransitionTime").and_then(Value::as_str)),
                            str_at(c, "/message").into(),
                        ]
                    })
                    .collect();
                s.push_str(&indent(
                    &table(&["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], &rows),
                    4,
                ));
            }
        }
        None => s.push_str("  <not yet reconciled>\n"),
    }
    let _ = writeln!(s, "Events:");
    if events.is_empty() {
        s.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                let seen = if e.count > 1 {
                    format!(
                        "{} (x{} over {})",
                        age(Some(&e.last_time)),
                        e.count,
                        age(Some(&e.first_time))
                    )
                } else {
                    age(Some(&e.last_time))
                };
                vec![e.type_.clone(), e.reason.clone(), seen, e.message.clone()]
            })
            .collect();
        s.push_str(&indent(
            &table(&["TYPE", "REASON", "AGE", "MESSAGE"], &rows),
            2,
        ));
    }
    s
}
