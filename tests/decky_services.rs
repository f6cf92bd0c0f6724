//! Fake services, end to end: real clients (OpenSSH through sshpass, curl) against deckies
//! deployed by the agent's executor on this machine's Docker daemon, events read back from
//! the decky container's log (all of its services write to it) and parsed with our own RFC 5424 parser. Plus in-process
//! tests of the limits (connection cap, idle timeout, slowloris) on loopback.
//!
//! Networks: bridge LANs in 10.250.71.0/24..10.250.75.0/24, one per test, torn down by a drop
//! guard even on failure. Traffic only goes to those containers and to 127.0.0.1.

mod support;

use support::{ShardCleanup, binary};

use std::collections::HashMap;
use std::process::Output;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use decnet::agent::Executor;
use decnet::api::{DeckyShardSpec, DeckySpec, LanSpec, NetworkDriver, Personality, Service};
use decnet::decky::serve::{ServeOptions, spawn};
use decnet::decky::services::emitter::Emitter;
use decnet::syslog::{EVENT_SD_ID, SyslogMessage, parse};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn shard_name(test: &str) -> String {
    format!("s{}-{test}", std::process::id() % 100_000)
}

struct Decky {
    shard: String,
    name: String,
    ip: String,
    _cleanup: ShardCleanup,
}

/// Deploys one decky with `services` on its own LAN 10.250.<octet>.0/24 at .10.
async fn deploy(
    test: &str,
    octet: u8,
    services: &[Service],
    personality: Option<Personality>,
) -> Decky {
    let shard = shard_name(test);
    let cleanup = ShardCleanup::one(&shard);
    let ip = format!("10.250.{octet}.10");
    let spec = DeckyShardSpec {
        worker: "local".into(),
        networks: vec![LanSpec {
            name: "lan".into(),
            subnet: Some(format!("10.250.{octet}.0/24")),
            driver: NetworkDriver::Bridge,
            parent: None,
            internal: false,
        }],
        deckies: vec![DeckySpec {
            name: "decoy".into(),
            services: services.to_vec(),
            ips: [("lan".to_owned(), ip.clone())].into(),
            forwards_l3: false,
            personality,
        }],
    };
    let executor = Executor::connect(binary()).await.expect("docker daemon");
    executor.deploy(&shard, &spec).await.expect("deploy");
    for s in services {
        wait_port(&ip, s.port()).await;
    }
    Decky {
        shard,
        name: "decoy".into(),
        ip,
        _cleanup: cleanup,
    }
}

async fn wait_port(ip: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect((ip, port))).await
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{ip}:{port} never accepted a connection");
}

async fn docker() -> Docker {
    Docker::connect_with_socket_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// Every stdout line of a container so far (raw bytes, newline removed).
async fn log_lines(container: &str) -> Vec<Vec<u8>> {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(false)
        .tail("all")
        .build();
    let d = docker().await;
    let mut s = d.logs(container, Some(opts));
    let mut raw = Vec::new();
    while let Some(chunk) = s.next().await {
        if let Ok(LogOutput::StdOut { message }) = chunk {
            raw.extend_from_slice(&message);
        }
    }
    raw.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A parsed event: MSGID plus decoded fields.
#[derive(Debug, Clone)]
struct Ev {
    msgid: String,
    fields: HashMap<String, String>,
}

fn decode(msg: &SyslogMessage) -> Ev {
    let el = msg.sd_element(EVENT_SD_ID).expect("event element");
    Ev {
        msgid: msg.msgid.clone().unwrap_or_default(),
        fields: el
            .params
            .iter()
            .map(|p| (p.name.clone(), p.decoded_value().into_owned()))
            .collect(),
    }
}

/// Checks every line of `service` in a decky's log: RFC 5424, one element with the neutral
/// SD-ID, the common fields, HOSTNAME = decky, APP-NAME = service, and byte-exact re-formatting.
/// Any unparseable line fails, whichever service wrote it.
fn check_lines(lines: &[Vec<u8>], decky: &str, service: Service) -> Vec<Ev> {
    lines
        .iter()
        .filter(|line| {
            let msg = parse(line).unwrap_or_else(|e| {
                panic!("unparseable line {:?}: {e}", String::from_utf8_lossy(line))
            });
            msg.app_name.as_deref() == Some(service.as_str())
        })
        .map(|line| {
            let text = String::from_utf8_lossy(line);
            let msg = parse(line).unwrap_or_else(|e| panic!("unparseable line {text:?}: {e}"));
            assert_eq!(&msg.to_bytes(), line, "round trip of {text}");
            assert_eq!(msg.facility.name(), "local0");
            assert_eq!(msg.hostname.as_deref(), Some(decky), "{text}");
            assert_eq!(msg.app_name.as_deref(), Some(service.as_str()), "{text}");
            assert_eq!(msg.structured_data.len(), 1, "{text}");
            assert!(
                !text.to_lowercase().contains("decnet"),
                "product name leaked: {text}"
            );
            assert!(msg.timestamp.is_some());
            let ev = decode(&msg);
            for f in [
                "session", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
            ] {
                assert!(ev.fields.contains_key(f), "{f} missing in {text}");
            }
            assert_eq!(ev.fields["protocol"], service.as_str());
            ev
        })
        .collect()
}

/// Polls the decky's log until an event of `service` satisfies `pred` (20 s at most).
async fn wait_event(d: &Decky, service: Service, pred: impl Fn(&Ev) -> bool) -> (Ev, Vec<Ev>) {
    let container = format!("{}-{}", d.shard, d.name);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = check_lines(&log_lines(&container).await, &d.name, service);
        if let Some(e) = events.iter().find(|e| pred(e)) {
            return (e.clone(), events);
        }
        if Instant::now() > deadline {
            panic!("no matching {service} event in {events:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn cmd(program: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test installs it): {e}"))
}

async fn first_bytes(ip: &str, port: u16) -> String {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect((ip, port)))
        .await
        .expect("connect timeout")
        .expect("connect");
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("banner timeout")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_login_attempt_is_logged_with_exact_credentials() {
    let d = deploy(
        "ssh",
        71,
        &[Service::Ssh],
        Some(Personality {
            hostname: Some("bastion".into()),
            ssh_banner: Some("SSH-2.0-OpenSSH_7.4".into()),
            ..Default::default()
        }),
    )
    .await;
    // The personality reaches the banner.
    assert_eq!(first_bytes(&d.ip, 22).await, "SSH-2.0-OpenSSH_7.4\r\n");

    let password = r#"Tr0ub4dor&3 "x]\ y#012"#;
    let target = format!("alice@{}", d.ip);
    let out = cmd(
        "sshpass",
        &[
            "-p",
            password,
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            &target,
            "true",
        ],
    )
    .await;
    assert!(!out.status.success(), "the decoy must refuse: {out:?}");

    let (login, events) = wait_event(&d, Service::Ssh, |e| {
        e.msgid == "login_attempt" && e.fields.get("username").map(String::as_str) == Some("alice")
    })
    .await;
    assert_eq!(login.fields["password"], password);
    assert_eq!(login.fields["auth_method"], "password");
    assert_eq!(login.fields["outcome"], "failure");
    assert_eq!(login.fields["dst_ip"], d.ip);
    assert_eq!(login.fields["dst_port"], "22");
    let kex = events
        .iter()
        .find(|e| e.msgid == "client_kex" && e.fields["session"] == login.fields["session"])
        .expect("client_kex event of the same session");
    assert!(
        kex.fields["client_version"].starts_with("SSH-2.0-OpenSSH_"),
        "{kex:?}"
    );
    let hassh = &kex.fields["hassh"];
    assert!(
        hassh.len() == 32 && hassh.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hassh}"
    );
    assert_eq!(&login.fields["hassh"], hassh);
    assert_eq!(
        format!("{:x}", md5::compute(&kex.fields["hassh_algorithms"])),
        *hassh
    );
    let session = &login.fields["session"];
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| &e.fields["session"] == session)
        .map(|e| e.msgid.as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"connection"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_basic_auth_and_login_form_are_logged() {
    let d = deploy(
        "http",
        72,
        &[Service::Http],
        Some(Personality {
            http_server: Some("nginx/1.18.0 (Ubuntu)".into()),
            ..Default::default()
        }),
    )
    .await;
    let url = format!("http://{}/admin/", d.ip);
    let out = cmd(
        "curl",
        &[
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-m",
            "10",
            "-A",
            "evil-agent/1.0",
            "-u",
            "bob:p@ss:w0rd",
            &url,
        ],
    )
    .await;
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    assert!(head.contains("Server: nginx/1.18.0 (Ubuntu)\r\n"), "{head}");
    assert!(head.contains("WWW-Authenticate: Basic"), "{head}");

    let (login, events) = wait_event(&d, Service::Http, |e| {
        e.msgid == "login_attempt"
            && e.fields.get("auth_method").map(String::as_str) == Some("basic")
    })
    .await;
    assert_eq!(login.fields["username"], "bob");
    assert_eq!(login.fields["password"], "p@ss:w0rd");
    let req = events
        .iter()
        .find(|e| e.msgid == "request" && e.fields["session"] == login.fields["session"])
        .unwrap();
    assert_eq!(req.fields["method"], "GET");
    assert_eq!(req.fields["path"], "/admin/");
    assert_eq!(req.fields["host"], d.ip);
    assert_eq!(req.fields["user_agent"], "evil-agent/1.0");
    assert_eq!(req.fields["status"], "401");

    // A posted login form.
    let out = cmd(
        "curl",
        &[
            "-s",
            "-m",
            "10",
            "-d",
            "username=carol&password=x%26y+z",
            &format!("http://{}/login", d.ip),
        ],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("Invalid username or password"));
    let (form, _) = wait_event(&d, Service::Http, |e| {
        e.msgid == "login_attempt"
            && e.fields.get("auth_method").map(String::as_str) == Some("form")
    })
    .await;
    assert_eq!(form.fields["username"], "carol");
    assert_eq!(form.fields["password"], "x&y z");
    assert_eq!(form.fields["path"], "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftp_login_attempt_is_logged() {
    let d = deploy("ftp", 73, &[Service::Ftp], None).await;
    assert_eq!(first_bytes(&d.ip, 21).await, "220 (vsFTPd 3.0.5)\r\n");
    let out = cmd(
        "curl",
        &["-s", "-m", "10", &format!("ftp://dave:s3cr3t%21@{}/", d.ip)],
    )
    .await;
    // 67: "the user name, password, or similar was not accepted".
    assert_eq!(out.status.code(), Some(67), "{out:?}");
    let (login, _) = wait_event(&d, Service::Ftp, |e| e.msgid == "login_attempt").await;
    assert_eq!(login.fields["username"], "dave");
    assert_eq!(login.fields["password"], "s3cr3t!");
    assert_eq!(login.fields["outcome"], "failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_leaves_every_service_answering() {
    let services = [
        Service::Ftp,
        Service::Http,
        Service::Ssh,
        Service::Telnet,
        Service::Smtp,
        Service::Redis,
        Service::Mysql,
    ];
    let d = deploy("hostile", 74, &services, None).await;
    // Half-open slow connections held open on every port during the whole test.
    let mut slow = Vec::new();
    for s in services {
        let mut c = TcpStream::connect((d.ip.as_str(), s.port())).await.unwrap();
        c.write_all(b"U").await.unwrap();
        slow.push(c);
    }
    // 1 MiB of binary garbage without a newline to every service.
    let garbage: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .map(|b| if b == b'\n' { 0 } else { b })
        .collect();
    let floods = services.map(|s| {
        let (ip, garbage) = (d.ip.clone(), garbage.clone());
        tokio::spawn(async move {
            let mut c = TcpStream::connect((ip.as_str(), s.port())).await.unwrap();
            // The service may close on us half-way (line too long): that is fine.
            let _ = tokio::time::timeout(Duration::from_secs(20), c.write_all(&garbage)).await;
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut sink)).await;
        })
    });
    for f in floods {
        f.await.unwrap();
    }
    // Every service still answers a well-behaved client.
    assert!(first_bytes(&d.ip, 21).await.starts_with("220 "));
    assert!(
        first_bytes(&d.ip, 22)
            .await
            .starts_with("SSH-2.0-OpenSSH_8.9p1")
    );
    assert!(first_bytes(&d.ip, 23).await.contains("decoy login: "));
    assert!(first_bytes(&d.ip, 25).await.starts_with("220 decoy ESMTP"));
    let mysql = first_bytes(&d.ip, 3306).await;
    assert!(mysql.contains("8.0.36"), "{mysql:?}");
    let out = cmd(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "10",
            &format!("http://{}/", d.ip),
        ],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let mut r = TcpStream::connect((d.ip.as_str(), 6379)).await.unwrap();
    r.write_all(b"PING\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), r.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"-NOAUTH Authentication required.\r\n");
    drop(slow);
    // Every line every service wrote parses and round-trips (and belongs to one of them);
    // nothing crashed.
    let container = format!("{}-{}", d.shard, d.name);
    let lines = log_lines(&container).await;
    let mut checked = 0;
    for s in services {
        let events = check_lines(&lines, &d.name, s);
        assert!(
            events.iter().filter(|e| e.msgid == "connection").count() >= 3,
            "{s}: {events:#?}"
        );
        checked += events.len();
    }
    assert_eq!(checked, lines.len(), "lines of no deployed service");
    let info = docker()
        .await
        .inspect_container(&container, None)
        .await
        .unwrap();
    assert_eq!(
        info.state.and_then(|s| s.running),
        Some(true),
        "{container} still running"
    );
}

/// In-process service on 127.0.0.1 with small limits; events come back through a channel.
async fn local(
    service: Service,
    f: impl FnOnce(&mut ServeOptions),
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::Receiver<Vec<u8>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let mut o = ServeOptions::new(vec![service], "lab");
    o.bind = "127.0.0.1".parse().unwrap();
    o.port = Some(0);
    f(&mut o);
    let listeners = o.bind().await.unwrap();
    let addr = listeners[0].0.local_addr().unwrap();
    let (emitter, rx) = Emitter::channel(10_000);
    (addr, rx, spawn(listeners, o.context(emitter)))
}

async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>, msgid: &str) -> Ev {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = tokio::time::timeout_at(deadline.into(), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {msgid} event"))
            .expect("emitter alive");
        let ev = decode(&parse(&line).unwrap());
        if ev.msgid == msgid {
            return ev;
        }
    }
}

#[tokio::test]
async fn connection_cap_closes_excess_connections_at_once() {
    let (addr, mut rx, tasks) = local(Service::Ftp, |o| {
        o.limits.max_connections = 3;
        o.limits.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut b = [0u8; 64];
        let n = c.read(&mut b).await.unwrap();
        assert!(b[..n].starts_with(b"220 "));
        held.push(c);
    }
    // The 4th is closed without a byte.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut b))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "excess connection must be closed");
    // Idle clients are dropped after the idle timeout, which frees the slots.
    for _ in 0..3 {
        let ev = next_event(&mut rx, "disconnect").await;
        assert_eq!(ev.fields["reason"], "idle_timeout");
    }
    let mut again = TcpStream::connect(addr).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), again.read(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert!(b[..n].starts_with(b"220 "));
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn slowloris_is_dropped_even_while_trickling() {
    let (addr, mut rx, tasks) = local(Service::Http, |o| {
        o.limits.idle_timeout = Duration::from_millis(800);
    })
    .await;
    let started = Instant::now();
    let mut c = TcpStream::connect(addr).await.unwrap();
    // One byte every 100 ms, never finishing the head.
    let trickle = tokio::spawn(async move {
        for b in b"GET / HTTP/1.1\r\nX-a: ".iter().cycle().take(200) {
            if c.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let ev = next_event(&mut rx, "disconnect").await;
    assert_eq!(ev.fields["reason"], "idle_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    trickle.abort();
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn mysql_and_telnet_and_redis_capture_logins_in_process() {
    // MySQL: a HandshakeResponse41 for user "sa" with database "prod".
    let (addr, mut rx, tasks) = local(Service::Mysql, |_| {}).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let mut greeting = vec![0u8; 4];
    c.read_exact(&mut greeting).await.unwrap();
    let len = u32::from_le_bytes([greeting[0], greeting[1], greeting[2], 0]) as usize;
    let mut rest = vec![0u8; len];
    c.read_exact(&mut rest).await.unwrap();
    assert_eq!(rest[0], 10);
    let caps: u32 = 0x200 | 0x8000 | 0x8 | 0x8_0000;
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&[0, 0, 0, 1, 33]);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(b"sa\0");
    p.extend_from_slice(&[4, 1, 2, 3, 4]);
    p.extend_from_slice(b"prod\0mysql_native_password\0");
    let mut pkt = (p.len() as u32).to_le_bytes()[..3].to_vec();
    pkt.push(1);
    pkt.extend_from_slice(&p);
    c.write_all(&pkt).await.unwrap();
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).await.unwrap();
    assert!(
        String::from_utf8_lossy(&reply)
            .contains("Access denied for user 'sa'@'127.0.0.1' (using password: YES)")
    );
    let ev = next_event(&mut rx, "login_attempt").await;
    assert_eq!(ev.fields["username"], "sa");
    assert_eq!(ev.fields["database"], "prod");
    assert_eq!(ev.fields["password_hash"], "01020304");
    for t in tasks {
        t.abort();
    }

    // Telnet: negotiation bytes are stripped, the third attempt gets a shell, commands logged.
    let (addr, mut rx, tasks) = local(Service::Telnet, |_| {}).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"root\r\n\xff\xfd\x01toor\r\nadmin\r\nadmin\r\nroot\r\n123456\r\ncat /etc/passwd\r\nexit\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("Login incorrect") && text.contains("root@lab:~# "),
        "{text}"
    );
    let first = next_event(&mut rx, "login_attempt").await;
    assert_eq!(
        (
            first.fields["username"].as_str(),
            first.fields["password"].as_str()
        ),
        ("root", "toor")
    );
    let cmd = next_event(&mut rx, "command").await;
    assert_eq!(cmd.fields["input"], "cat /etc/passwd");
    for t in tasks {
        t.abort();
    }

    // Redis: AUTH through RESP.
    let (addr, mut rx, tasks) = local(Service::Redis, |_| {}).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"*2\r\n$4\r\nAUTH\r\n$7\r\nfoobar!\r\nQUIT\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    assert!(out.starts_with(b"-WRONGPASS"));
    let ev = next_event(&mut rx, "login_attempt").await;
    assert_eq!(ev.fields["password"], "foobar!");
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn every_in_process_line_round_trips() {
    let (addr, mut rx, tasks) = local(Service::Smtp, |_| {}).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"EHLO x\r\nAUTH PLAIN AGFsaWNlAHB3MQ==\r\nMAIL FROM:<a\"]\\@b>\r\nRCPT TO:<v@c>\r\n\
          DATA\r\nSubject: \x01\x7f#012\r\n.\r\nQUIT\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    let mut lines = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("events")
            .expect("emitter alive");
        let done = line.windows(12).any(|w| w == b" disconnect ");
        lines.push(line);
        if done {
            break;
        }
    }
    let events = check_lines(&lines, "lab", Service::Smtp);
    let kinds: Vec<&str> = events.iter().map(|e| e.msgid.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "connection",
            "command",
            "login_attempt",
            "mail_from",
            "rcpt_to",
            "message",
            "disconnect"
        ]
    );
    assert_eq!(events[2].fields["username"], "alice");
    assert_eq!(events[2].fields["password"], "pw1");
    assert_eq!(events[3].fields["address"], "a\"]\\@b");
    assert_eq!(events[5].fields["subject"], "\u{1}\u{7f}#012");
    assert_eq!(events[6].fields["reason"], "server_closed");
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn ssh_session_timeout_closes_the_connection() {
    let (addr, mut rx, tasks) = local(Service::Ssh, |o| {
        o.limits.session_timeout = Duration::from_secs(1);
        o.limits.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let started = Instant::now();
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"SSH-2.0-OpenSSH_9.9\r\n").await.unwrap();
    // Read everything the server sends (banner, KEXINIT) until it hangs up.
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut sink))
        .await
        .expect("the server must close the connection at the session timeout")
        .ok();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(sink.starts_with(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n"));
    let ev = next_event(&mut rx, "disconnect").await;
    assert_eq!(ev.fields["reason"], "session_timeout");
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connections_are_capped_and_the_service_survives() {
    const CAP: usize = 256;
    const CLIENTS: usize = 2000;
    let (addr, _rx, tasks) = local(Service::Ftp, |o| o.limits.max_connections = CAP).await;
    let clients = futures::future::join_all((0..CLIENTS).map(|_| async move {
        let mut c = TcpStream::connect(addr).await.ok()?;
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut b))
            .await
            .ok()?
            .unwrap_or(0);
        Some((b[..n].starts_with(b"220 "), c))
    }))
    .await;
    let served = clients.iter().flatten().filter(|(ok, _)| *ok).count();
    assert_eq!(served, CAP, "exactly the cap is served at once");
    drop(clients);
    // The slots come back once those clients are gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut b = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), c.read(&mut b)).await
            && b[..n].starts_with(b"220 ")
        {
            break;
        }
        assert!(Instant::now() < deadline, "service never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        t.abort();
    }
}
