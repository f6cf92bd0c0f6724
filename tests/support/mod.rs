//! Helpers shared by the integration tests (`mod support;` in each test crate;
//! not every crate uses every helper).
#![allow(dead_code)]

use std::path::PathBuf;

use decnet::agent::Executor;

/// The `decnet` binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_decnet"))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Tears these shards down (containers and networks, whichever worker owns
/// them) when the test ends, even on panic — through the agent's own executor.
pub struct ShardCleanup(pub Vec<String>);

impl ShardCleanup {
    pub fn one(shard: &str) -> ShardCleanup {
        ShardCleanup(vec![shard.to_string()])
    }
}

impl Drop for ShardCleanup {
    fn drop(&mut self) {
        let shards = std::mem::take(&mut self.0);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(e) = Executor::connect(binary()).await {
                    for shard in shards {
                        let _ = e.teardown(Some(&shard), None).await;
                    }
                }
            });
        })
        .join()
        .unwrap();
    }
}
