//! `TestServer`: the real edudns, started in-process on 127.0.0.1:0 with a
//! config written to a temporary directory, forwarding to a [`TestUpstream`].

use super::config::{GAMBLING, SOCIAL, write};
use super::dns::query_udp;
use super::http::http_request;
use crate::upstream::TestUpstream;
use edudns::app::reload::{ConfigSource, Overrides};
use edudns::app::{Running, start_with_clock};
use edudns::policy::clock::Clock;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;

pub struct TestServer {
    pub running: Running,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub upstream: Option<TestUpstream>,
}

impl TestServer {
    /// Starts edudns with `config` (and the default lists) forwarding to `upstream`.
    pub async fn start(config: &str, upstream: Option<TestUpstream>) -> TestServer {
        Self::start_with_clock(
            config,
            upstream,
            Arc::new(edudns::policy::clock::SystemClock),
        )
        .await
    }

    /// [`TestServer::start`] with a clock the test controls.
    pub async fn start_with_clock(
        config: &str,
        upstream: Option<TestUpstream>,
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let upstreams = upstream.iter().map(|u| u.addr).collect();
        let mut server = Self::start_inner(config, upstreams, clock).await;
        server.upstream = upstream;
        server
    }

    /// Starts edudns forwarding to an upstream the test runs itself (a raw
    /// UDP server on loopback that misbehaves in ways hickory-server won't).
    pub async fn start_with_upstream_addr(config: &str, upstream: SocketAddr) -> TestServer {
        Self::start_with_upstream_addrs(config, vec![upstream]).await
    }

    /// [`TestServer::start`] forwarding to these servers, in this order.
    pub async fn start_with_upstream_addrs(config: &str, upstreams: Vec<SocketAddr>) -> TestServer {
        Self::start_inner(
            config,
            upstreams,
            Arc::new(edudns::policy::clock::SystemClock),
        )
        .await
    }

    async fn start_inner(
        config: &str,
        upstreams: Vec<SocketAddr>,
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lists")).unwrap();
        write(&dir.path().join("lists/gambling.txt"), GAMBLING);
        write(&dir.path().join("lists/social.txt"), SOCIAL);
        let config_path = dir.path().join("edudns.toml");
        write(&config_path, config);
        let overrides = Overrides {
            upstreams: upstreams
                .into_iter()
                .map(edudns::config::UpstreamServer::Plain)
                .collect(),
            fast_path: fast_path_override(),
            ..Overrides::default()
        };
        let running = start_with_clock(ConfigSource::File(config_path), overrides, clock)
            .await
            .unwrap_or_else(|e| panic!("edudns did not start: {e}"));
        let addr = running.dns_addrs()[0];
        TestServer {
            running,
            addr,
            dir,
            upstream: None,
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Asks `name`/`rtype` over UDP from source address `src` with hickory's client.
    pub async fn query_from(&self, src: &str, name: &str, rtype: RecordType) -> Message {
        query_udp(self.addr, src, name, rtype).await
    }

    pub async fn query(&self, name: &str, rtype: RecordType) -> Message {
        self.query_from("127.0.0.2", name, rtype).await
    }

    /// A new API token with `role` ("office", "school:s1", "auditor").
    pub fn token(&self, role: &str) -> String {
        let config = self.running.handler.snapshot.load().config.clone();
        let role = edudns::admin::tokens::Role::parse(role).unwrap();
        edudns::admin::tokens::create(&config.admin.tokens_file, &role, &format!("test {role}"))
            .unwrap()
            .0
    }

    /// GET on the management listener with an office token.
    pub async fn api_get(&self, path: &str) -> (u16, String, String) {
        let token = self.token("office");
        let auth = format!("Bearer {token}");
        let addr = self.running.management_addr;
        http_request(
            addr,
            "127.0.0.1",
            "GET",
            path,
            &addr.to_string(),
            &[("Authorization", &auth)],
            "",
        )
        .await
    }

    pub fn counters(&self) -> edudns::dns::counters::CountersSnapshot {
        self.running.handler.counters.snapshot()
    }
}

/// `EDUDNS_TEST_FAST_PATH=0` runs every test server without the UDP fast
/// path (`.ci/run` runs the suite both ways, so both paths keep one
/// behaviour); unset or 1 leaves the configuration's setting (on).
pub fn fast_path_override() -> Option<bool> {
    match std::env::var("EDUDNS_TEST_FAST_PATH").as_deref() {
        Ok("0") => Some(false),
        Ok("1") => Some(true),
        _ => None,
    }
}
