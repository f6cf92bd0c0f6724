//! The worker's own networking, detected on the worker (never assumed from the master):
//! default-route NIC, its subnet, gateway and address; and free private subnets for bridge
//! LANs that do not name one.
//!
//! Parsing is pure (unit-tested); [`detect`] reads `/proc/net/route` and `/sys/class/net`.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One IPv4 route from `/proc/net/route`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub destination: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
}

/// What the worker's default route looks like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostNetwork {
    /// Default-route interface (the default macvlan/ipvlan parent).
    pub nic: String,
    pub gateway: Ipv4Addr,
    /// The NIC's on-link subnet, `a.b.c.d/len`, when a connected route exists.
    pub subnet: Option<String>,
    /// The worker's source address towards the gateway.
    pub address: Option<Ipv4Addr>,
}

/// `/proc/net/route` stores addresses as little-endian hex of the network-order bytes.
fn parse_hex_addr(s: &str) -> Option<Ipv4Addr> {
    let v = u32::from_str_radix(s, 16).ok()?;
    Some(Ipv4Addr::from(v.to_le_bytes()))
}

/// Parses the text of `/proc/net/route` (header line skipped; malformed lines ignored).
pub fn parse_proc_net_route(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let mask = parse_hex_addr(f[7])?;
            Some(Route {
                iface: f[0].to_owned(),
                destination: parse_hex_addr(f[1])?,
                gateway: parse_hex_addr(f[2])?,
                prefix: u32::from(mask).count_ones() as u8,
            })
        })
        .collect()
}

/// The default route's NIC, gateway and on-link subnet, from parsed routes.
pub fn default_route(routes: &[Route]) -> Option<HostNetwork> {
    let def = routes
        .iter()
        .find(|r| r.prefix == 0 && r.destination.is_unspecified())?;
    let subnet = routes
        .iter()
        .filter(|r| r.iface == def.iface && r.prefix > 0 && r.gateway.is_unspecified())
        .find(|r| in_subnet(def.gateway, r.destination, r.prefix))
        .or_else(|| {
            routes
                .iter()
                .find(|r| r.iface == def.iface && r.prefix > 0 && r.gateway.is_unspecified())
        })
        .map(|r| format!("{}/{}", r.destination, r.prefix));
    Some(HostNetwork {
        nic: def.iface.clone(),
        gateway: def.gateway,
        subnet,
        address: None,
    })
}

/// Detects the worker's default-route networking.
pub fn detect() -> std::io::Result<Option<HostNetwork>> {
    let text = std::fs::read_to_string("/proc/net/route")?;
    let Some(mut host) = default_route(&parse_proc_net_route(&text)) else {
        return Ok(None);
    };
    // Connecting a UDP socket sends nothing; it only asks the kernel for the source address.
    host.address = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(SocketAddrV4::new(host.gateway, 9))?;
            s.local_addr()
        })
        .ok()
        .and_then(|a| match a.ip() {
            std::net::IpAddr::V4(v4) if !v4.is_unspecified() => Some(v4),
            _ => None,
        });
    Ok(Some(host))
}

/// Whether the host has a network interface called `nic`.
pub fn nic_exists(nic: &str) -> bool {
    !nic.is_empty() && !nic.contains('/') && Path::new("/sys/class/net").join(nic).exists()
}

/// All IPv4 routes of the host (for overlap checks); empty when unreadable.
pub fn host_routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_proc_net_route(&t))
        .unwrap_or_default()
}

pub fn in_subnet(addr: Ipv4Addr, base: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(addr) & mask) == (u32::from(base) & mask)
}

/// Whether two CIDRs overlap.
pub fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let p = a.1.min(b.1);
    in_subnet(a.0, b.0, p)
}

/// First /24 in the agent's pool (10.213.0.0/16) that overlaps none of `used` (Docker network
/// subnets and host routes; the default route is ignored).
pub fn pick_free_subnet(used: &[(Ipv4Addr, u8)]) -> Option<String> {
    (0..=255u8).find_map(|third| {
        let candidate = (Ipv4Addr::new(10, 213, third, 0), 24);
        let free = used
            .iter()
            .filter(|u| u.1 > 0)
            .all(|u| !overlaps(candidate, *u));
        free.then(|| format!("{}/24", candidate.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
garbage line
";

    #[test]
    fn parses_proc_net_route() {
        let routes = parse_proc_net_route(ROUTE);
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0].gateway, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(routes[1].destination, Ipv4Addr::new(172, 17, 0, 0));
        assert_eq!(routes[1].prefix, 16);
    }

    #[test]
    fn finds_default_route_nic_subnet_gateway() {
        let host = default_route(&parse_proc_net_route(ROUTE)).unwrap();
        assert_eq!(host.nic, "eth0");
        assert_eq!(host.gateway, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(host.subnet.as_deref(), Some("192.0.2.0/24"));
    }

    #[test]
    fn no_default_route() {
        let text = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert_eq!(default_route(&parse_proc_net_route(text)), None);
    }

    #[test]
    fn picks_a_free_subnet() {
        let used = vec![
            (Ipv4Addr::new(0, 0, 0, 0), 0),
            (Ipv4Addr::new(10, 213, 0, 0), 24),
            (Ipv4Addr::new(10, 213, 1, 128), 25),
        ];
        assert_eq!(pick_free_subnet(&used).as_deref(), Some("10.213.2.0/24"));
        assert_eq!(pick_free_subnet(&[(Ipv4Addr::new(10, 0, 0, 0), 8)]), None);
    }

    #[test]
    fn detects_this_host() {
        // Every CI host here has a default route; the parser must find it.
        if let Some(h) = detect().unwrap() {
            assert!(nic_exists(&h.nic), "{h:?}");
        }
        assert!(!nic_exists("../etc"));
    }
}
