use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A fake service a decky can run. The list is closed so a typo in a manifest is
/// caught at apply time with the allowed values, not at deploy time on a worker.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Ssh,
    Http,
    Ftp,
    Telnet,
    Smtp,
    Redis,
    Mysql,
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::Ssh,
        Service::Http,
        Service::Ftp,
        Service::Telnet,
        Service::Smtp,
        Service::Redis,
        Service::Mysql,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Ssh => "ssh",
            Service::Http => "http",
            Service::Ftp => "ftp",
            Service::Telnet => "telnet",
            Service::Smtp => "smtp",
            Service::Redis => "redis",
            Service::Mysql => "mysql",
        }
    }

    /// The port the service listens on inside the decky.
    pub fn port(self) -> u16 {
        match self {
            Service::Ssh => 22,
            Service::Http => 80,
            Service::Ftp => 21,
            Service::Telnet => 23,
            Service::Smtp => 25,
            Service::Redis => 6379,
            Service::Mysql => 3306,
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
