//! Applies a [`Plan`] to Docker through bollard (never the docker CLI, never compose).
//!
//! Order: remove stale containers → remove stale networks → create networks → create deckies
//! (base, extra LANs, start, then services) and lone services. Each phase runs with bounded
//! parallelism ([`Executor::parallelism`]); that is what makes a cold deploy faster than
//! `docker compose up`, which creates containers one dependency level at a time.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Instant;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListNetworksOptions, RemoveContainerOptionsBuilder,
};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::agent::error::{AgentError, DockerContext, driver_name, is_not_found};
use crate::agent::hostnet::{self, HostNetwork};
use crate::agent::observe::{network_subnet, observe};
use crate::agent::plan::{self, DeckyCreate, NetworkCreate, Plan, labels};
use crate::api::{DeckyShardSpec, DeckySpec, NetworkDriver, validate::parse_cidr};
use crate::decky::image;

/// What a deploy did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployReport {
    pub shard: String,
    pub image: String,
    /// True when the plan was empty (nothing was touched).
    pub unchanged: bool,
    pub networks_created: Vec<String>,
    pub networks_removed: Vec<String>,
    pub containers_created: Vec<String>,
    pub containers_removed: Vec<String>,
    pub elapsed_ms: u64,
}

/// What a teardown removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeardownReport {
    pub containers_removed: Vec<String>,
    pub networks_removed: Vec<String>,
}

/// Converges Docker to shards.
#[derive(Clone)]
pub struct Executor {
    docker: Docker,
    /// The `decnet` binary packaged into the decky image.
    binary: PathBuf,
    /// Concurrent Docker operations per phase.
    pub parallelism: usize,
    /// Worker name stamped on (and required of) every object this executor manages.
    owner: Option<String>,
}

/// Serializes auto subnet picking + creation across shards (two shards must not pick the same).
static SUBNET_LOCK: Mutex<()> = Mutex::const_new(());

impl Executor {
    pub fn new(docker: Docker, binary: PathBuf) -> Self {
        Executor {
            docker,
            binary,
            parallelism: 8,
            owner: None,
        }
    }

    /// Manage only objects of worker `name` (labelled `decnet.io/worker=<name>`).
    pub fn with_owner(mut self, name: &str) -> Self {
        self.owner = Some(name.to_owned());
        self
    }

    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Connects to the local Docker daemon (unix socket) and negotiates the API version.
    pub async fn connect(binary: PathBuf) -> Result<Self, AgentError> {
        let docker = Docker::connect_with_socket_defaults()
            .ctx(|| "connect to the Docker socket".into())?
            .negotiate_version()
            .await
            .ctx(|| "negotiate the Docker API version".into())?;
        Ok(Self::new(docker, binary))
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The decky image, built if missing.
    pub async fn ensure_image(&self) -> Result<String, AgentError> {
        Ok(image::ensure_image(&self.docker, &self.binary).await?)
    }

    /// Converges Docker to `spec` under the name `shard`. Callers serialize per shard.
    pub async fn deploy(
        &self,
        shard: &str,
        spec: &DeckyShardSpec,
    ) -> Result<DeployReport, AgentError> {
        let span = tracing::info_span!("deploy", shard);
        async {
            let started = Instant::now();
            validate(shard, spec)?;
            let image = self.ensure_image().await?;
            let observed = observe(&self.docker, self.owner(), Some(shard))
                .await?
                .remove(shard)
                .unwrap_or_default();
            let plan = plan::plan(shard, spec, &image, &observed);
            let mut report = DeployReport {
                shard: shard.to_owned(),
                image: image.clone(),
                unchanged: plan.is_empty(),
                ..Default::default()
            };
            if !plan.is_empty() {
                self.apply(shard, &image, plan, &mut report).await?;
            }
            report.elapsed_ms = started.elapsed().as_millis() as u64;
            tracing::info!(
                unchanged = report.unchanged,
                created = report.containers_created.len(),
                removed = report.containers_removed.len(),
                elapsed_ms = report.elapsed_ms,
                "deployed"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    async fn apply(
        &self,
        shard: &str,
        image: &str,
        plan: Plan,
        report: &mut DeployReport,
    ) -> Result<(), AgentError> {
        let n = self.parallelism.max(1);
        report.containers_removed = self.remove_containers(plan.remove_containers).await?;
        report.networks_removed = self.remove_networks(plan.remove_networks).await?;

        let host = hostnet::detect().ok().flatten();
        for net in &plan.create_networks {
            self.create_network(shard, net, host.as_ref()).await?;
            report
                .networks_created
                .push(plan::network_name(shard, &net.lan.name));
        }

        let mut created = stream::iter(
            plan.create_deckies
                .into_iter()
                .map(|d| self.create_decky(shard, image, d)),
        )
        .buffer_unordered(n)
        .try_collect::<Vec<String>>()
        .await?;
        created.sort();
        report.containers_created = created;
        Ok(())
    }

    async fn remove_containers(
        &self,
        ids: Vec<(String, String)>,
    ) -> Result<Vec<String>, AgentError> {
        let docker = &self.docker;
        let mut removed: Vec<String> = stream::iter(ids.into_iter().map(|(id, name)| async move {
            let opts = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(&id, Some(opts)).await {
                Ok(()) => Ok(name),
                Err(e) if is_not_found(&e) => Ok(name),
                // 409: removal already in progress (e.g. concurrent teardown).
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => Ok(name),
                Err(e) => Err(e).ctx(|| format!("remove container {name}")),
            }
        }))
        .buffer_unordered(self.parallelism.max(1))
        .try_collect()
        .await?;
        removed.sort();
        Ok(removed)
    }

    async fn remove_networks(&self, ids: Vec<(String, String)>) -> Result<Vec<String>, AgentError> {
        let docker = &self.docker;
        let mut removed: Vec<String> = stream::iter(ids.into_iter().map(|(id, name)| async move {
            match docker.remove_network(&id).await {
                Ok(()) => Ok(name),
                Err(e) if is_not_found(&e) => Ok(name),
                Err(e) => Err(e).ctx(|| format!("remove network {name}")),
            }
        }))
        .buffer_unordered(self.parallelism.max(1))
        .try_collect()
        .await?;
        removed.sort();
        Ok(removed)
    }

    /// Creates the network of one LAN; returns its subnet.
    async fn create_network(
        &self,
        shard: &str,
        net: &NetworkCreate,
        host: Option<&HostNetwork>,
    ) -> Result<Option<String>, AgentError> {
        let lan = &net.lan;
        let name = plan::network_name(shard, &lan.name);
        let driver = driver_name(lan.driver);
        let net_err = |parent: Option<String>, reason: String| AgentError::Network {
            lan: lan.name.clone(),
            driver,
            parent,
            reason,
        };
        let mut options = HashMap::new();
        let mut subnet = lan.subnet.clone();
        let mut gateway = None;
        let mut parent_nic = None;
        let _guard;
        match lan.driver {
            NetworkDriver::Bridge => {
                if subnet.is_none() {
                    _guard = SUBNET_LOCK.lock().await;
                    subnet = Some(self.free_subnet().await.map_err(|e| net_err(None, e))?);
                }
            }
            NetworkDriver::Macvlan | NetworkDriver::Ipvlan => {
                let parent = match (&lan.parent, host) {
                    (Some(p), _) => p.clone(),
                    (None, Some(h)) => h.nic.clone(),
                    (None, None) => {
                        return Err(net_err(
                            None,
                            "no parent NIC given and this worker has no \
                            default route to detect one from; set `parent:` on the LAN or use \
                            driver: bridge"
                                .into(),
                        ));
                    }
                };
                if !hostnet::nic_exists(&parent) {
                    return Err(net_err(
                        Some(parent.clone()),
                        "this worker has no such network \
                        interface (see /sys/class/net); set `parent:` to one of its NICs or use \
                        driver: bridge"
                            .into(),
                    ));
                }
                if subnet.is_none() {
                    // The point of macvlan/ipvlan: deckies appear on the worker's own LAN.
                    match host.filter(|h| h.nic == parent) {
                        Some(h) if h.subnet.is_some() => {
                            subnet = h.subnet.clone();
                            gateway = Some(h.gateway.to_string());
                        }
                        _ => {
                            return Err(net_err(
                                Some(parent.clone()),
                                "cannot detect the subnet of \
                                that NIC on this worker; set `subnet:` on the LAN"
                                    .into(),
                            ));
                        }
                    }
                }
                options.insert("parent".to_owned(), parent.clone());
                if lan.driver == NetworkDriver::Ipvlan {
                    options.insert("ipvlan_mode".to_owned(), "l2".to_owned());
                }
                parent_nic = Some(parent);
            }
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some(driver.to_owned()),
            internal: Some(lan.internal),
            attachable: Some(true),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: subnet.clone(),
                    gateway,
                    ..Default::default()
                }]),
                options: None,
            }),
            options: Some(options),
            labels: Some(self.owned(HashMap::from([
                (labels::MANAGED.to_owned(), "true".to_owned()),
                (labels::SHARD.to_owned(), shard.to_owned()),
                (labels::LAN.to_owned(), lan.name.clone()),
                (labels::SPEC_HASH.to_owned(), net.hash.clone()),
            ]))),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(subnet),
            Err(e) if lan.driver != NetworkDriver::Bridge => Err(net_err(
                parent_nic,
                format!(
                    "{e}; the worker's kernel/Docker must support {driver} on that NIC \
                    (e.g. `modprobe {driver}`; many VMs and containers forbid it), otherwise \
                    use driver: bridge"
                ),
            )),
            Err(e) => Err(net_err(None, e.to_string())),
        }
    }

    /// A private /24 that overlaps no Docker network and no host route.
    async fn free_subnet(&self) -> Result<String, String> {
        let nets = self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(|e| format!("list networks: {e}"))?;
        let mut used: Vec<(Ipv4Addr, u8)> = nets
            .iter()
            .filter_map(network_subnet)
            .filter_map(|s| parse_cidr(&s))
            .collect();
        used.extend(
            hostnet::host_routes()
                .iter()
                .map(|r| (r.destination, r.prefix)),
        );
        hostnet::pick_free_subnet(&used)
            .ok_or_else(|| "no free /24 left in 10.213.0.0/16; set `subnet:` on the LAN".into())
    }

    /// Adds the owner label when this executor has an owner.
    fn owned(&self, mut labels: HashMap<String, String>) -> HashMap<String, String> {
        if let Some(w) = &self.owner {
            labels.insert(labels::WORKER.to_owned(), w.clone());
        }
        labels
    }

    fn common_labels(
        &self,
        shard: &str,
        decky: &str,
        role: &str,
        hash: &str,
    ) -> HashMap<String, String> {
        self.owned(HashMap::from([
            (labels::MANAGED.to_owned(), "true".to_owned()),
            (labels::SHARD.to_owned(), shard.to_owned()),
            (labels::DECKY.to_owned(), decky.to_owned()),
            (labels::ROLE.to_owned(), role.to_owned()),
            (labels::SPEC_HASH.to_owned(), hash.to_owned()),
        ]))
    }

    /// Creates and starts a decky's base container, joins its LANs, then its services.
    async fn create_decky(
        &self,
        shard: &str,
        image: &str,
        d: DeckyCreate,
    ) -> Result<String, AgentError> {
        let span = tracing::debug_span!("decky", decky = %d.decky.name);
        async {
            let decky = &d.decky;
            let name = plan::container_name(shard, &decky.name);
            let lans = &d.networks;
            let endpoint = |ip: Option<&str>| EndpointSettings {
                ipam_config: ip.map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let (first_net, first_ip) =
                lans.first()
                    .cloned()
                    .ok_or_else(|| AgentError::InvalidSpec {
                        shard: shard.to_owned(),
                        reason: format!("decky {:?} joins no LAN", decky.name),
                    })?;
            let mut labels = self.common_labels(shard, &decky.name, labels::ROLE_DECKY, &d.hash);
            labels.insert(labels::SERVICES.to_owned(), plan::services_list(decky));
            let sysctls = decky
                .forwards_l3
                .then(|| HashMap::from([("net.ipv4.ip_forward".to_owned(), "1".to_owned())]));
            let body = ContainerCreateBody {
                image: Some(image.to_owned()),
                cmd: Some(decky_command(decky)),
                env: Some(DECKY_ENV.iter().map(|e| e.to_string()).collect()),
                hostname: Some(
                    decky
                        .personality
                        .as_ref()
                        .and_then(|p| p.hostname.clone())
                        .unwrap_or_else(|| decky.name.clone()),
                ),
                labels: Some(labels),
                stop_timeout: Some(2),
                host_config: Some(HostConfig {
                    network_mode: Some(first_net.clone()),
                    sysctls,
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        first_net.clone(),
                        endpoint(first_ip.as_deref()),
                    )])),
                }),
                ..Default::default()
            };
            let id = self.create(&name, body).await?;
            // API 1.41 takes one network at create time: connect the others before start.
            for (net, ip) in lans.iter().skip(1) {
                self.docker
                    .connect_network(
                        net,
                        NetworkConnectRequest {
                            container: id.clone(),
                            endpoint_config: Some(endpoint(ip.as_deref())),
                        },
                    )
                    .await
                    .ctx(|| format!("connect {name} to {net}"))?;
            }
            self.docker
                .start_container(
                    &id,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .ctx(|| format!("start {name}"))?;
            Ok(name)
        }
        .instrument(span)
        .await
    }

    async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<String, AgentError> {
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        Ok(self
            .docker
            .create_container(Some(opts), body)
            .await
            .ctx(|| format!("create container {name}"))?
            .id)
    }

    /// Removes everything of `shard` (all shards when `None`); with `decky`, only that decky's
    /// containers (networks stay).
    pub async fn teardown(
        &self,
        shard: Option<&str>,
        decky: Option<&str>,
    ) -> Result<TeardownReport, AgentError> {
        let observed = observe(&self.docker, self.owner(), shard).await?;
        let mut containers = Vec::new();
        let mut networks = Vec::new();
        for obs in observed.values() {
            containers.extend(
                obs.containers
                    .iter()
                    .filter(|c| decky.is_none_or(|d| c.decky == d))
                    .map(|c| (c.id.clone(), c.name.clone())),
            );
            if decky.is_none() {
                networks.extend(obs.networks.iter().map(|n| (n.id.clone(), n.name.clone())));
            }
        }
        Ok(TeardownReport {
            containers_removed: self.remove_containers(containers).await?,
            networks_removed: self.remove_networks(networks).await?,
        })
    }
}

/// Environment of decky containers. mimalloc (the binary's allocator, chosen for the master's
/// log plane) commits its arenas eagerly by default; a decky allocates little, and with lazy
/// commit its anonymous memory stays ~1.4 MiB instead of ~7 MiB (measured,
/// `cargo bench --bench decky_services`).
pub const DECKY_ENV: [&str; 1] = ["MIMALLOC_ARENA_EAGER_COMMIT=0"];

/// The decky container's command: `decky serve` with all of its services in one process and its
/// personality as flags (`decky base`, which only holds the addresses, when it has none). The
/// personality is part of the decky's spec hash, so changing it recreates the container.
pub fn decky_command(decky: &DeckySpec) -> Vec<String> {
    let services = plan::services_list(decky);
    if services.is_empty() {
        return vec![
            "decky".into(),
            "base".into(),
            "--decky".into(),
            decky.name.clone(),
        ];
    }
    let mut cmd = vec![
        "decky".into(),
        "serve".into(),
        "--service".into(),
        services,
        "--decky".into(),
        decky.name.clone(),
    ];
    if let Some(p) = &decky.personality {
        for (flag, value) in [
            ("--hostname", &p.hostname),
            ("--ssh-banner", &p.ssh_banner),
            ("--http-server", &p.http_server),
            ("--ftp-banner", &p.ftp_banner),
            ("--os", &p.os),
        ] {
            if let Some(v) = value {
                // `--flag=value`: a value starting with `-` cannot be taken for a flag.
                cmd.push(format!("{flag}={v}"));
            }
        }
    }
    cmd
}

/// Checks what the agent needs beyond the schema: LAN references, addresses inside subnets.
pub fn validate(shard: &str, spec: &DeckyShardSpec) -> Result<(), AgentError> {
    let bad = |reason: String| AgentError::InvalidSpec {
        shard: shard.to_owned(),
        reason,
    };
    crate::api::validate::check_dns_label(shard).map_err(|e| bad(format!("shard name: {e}")))?;
    let lans = plan::effective_lans(spec);
    let mut names = std::collections::BTreeSet::new();
    for lan in &lans {
        if !names.insert(lan.name.as_str()) {
            return Err(bad(format!("duplicate LAN {:?}", lan.name)));
        }
        if let Some(s) = &lan.subnet
            && parse_cidr(s).is_none()
        {
            return Err(bad(format!(
                "LAN {:?}: subnet {s:?} is not an IPv4 CIDR",
                lan.name
            )));
        }
    }
    let mut deckies = std::collections::BTreeSet::new();
    let mut used: BTreeMap<(String, String), String> = BTreeMap::new();
    for d in &spec.deckies {
        if !deckies.insert(d.name.as_str()) {
            return Err(bad(format!("duplicate decky {:?}", d.name)));
        }
        if d.services.is_empty() {
            return Err(bad(format!("decky {:?} has no services", d.name)));
        }
        for (lan, ip) in &d.ips {
            let Some(l) = lans.iter().find(|l| &l.name == lan) else {
                return Err(bad(format!(
                    "decky {:?}: LAN {lan:?} is not declared in networks",
                    d.name
                )));
            };
            if ip.is_empty() {
                continue;
            }
            let addr: Ipv4Addr = ip.parse().map_err(|_| {
                bad(format!(
                    "decky {:?}: {ip:?} on LAN {lan:?} is not an IPv4 address",
                    d.name
                ))
            })?;
            if let Some((base, prefix)) = l.subnet.as_deref().and_then(parse_cidr)
                && !hostnet::in_subnet(addr, base, prefix)
            {
                return Err(bad(format!(
                    "decky {:?}: {ip} is outside LAN {lan:?} ({})",
                    d.name,
                    l.subnet.as_deref().unwrap_or_default()
                )));
            }
            if let Some(other) = used.insert((lan.clone(), ip.clone()), d.name.clone()) {
                return Err(bad(format!(
                    "{ip} on LAN {lan:?} is used by both {other:?} and {:?}",
                    d.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Personality, Service};
    use clap::Parser;

    #[test]
    fn decky_command_carries_services_and_personality_and_parses() {
        let mut d = DeckySpec {
            name: "web".into(),
            services: vec![],
            ips: Default::default(),
            forwards_l3: false,
            personality: None,
        };
        assert_eq!(decky_command(&d), ["decky", "base", "--decky", "web"]);
        d.services = vec![Service::Ssh, Service::Http, Service::Ssh];
        assert_eq!(
            decky_command(&d),
            ["decky", "serve", "--service", "ssh,http", "--decky", "web"]
        );
        d.personality = Some(Personality {
            hostname: Some("db-prod".into()),
            ssh_banner: Some("-SSH-2.0-odd".into()),
            os: Some("Debian GNU/Linux 12".into()),
            ..Default::default()
        });
        let cmd = decky_command(&d);
        let cli = crate::cli::Cli::try_parse_from(std::iter::once("decnet".to_owned()).chain(cmd))
            .expect("the agent's command line parses");
        let crate::cli::Command::Decky(args) = cli.command else {
            panic!("not a decky command")
        };
        let crate::cli::decky::DeckyCommand::Serve(serve) = args.command else {
            panic!("not serve")
        };
        let o = serve.options();
        assert_eq!(o.personality, d.personality.clone().unwrap());
        assert_eq!(o.services, [Service::Ssh, Service::Http]);
    }
}
