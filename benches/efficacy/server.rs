//! The edudns under test: the real binary on the installed configuration
//! rewritten for loopback (a mirror of `../shared/data`, a loopback
//! upstream, no per-client rate limit), started with no cached lists, then
//! restarted from the compiled lists; what the two starts measured (for
//! docs/performance.md).

use crate::install::{DefaultSource, Mirror, SINKHOLE, THCS, installed_config, mirror_bodies};
use crate::net::{self, Verdict};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EDUDNS: &str = env!("CARGO_BIN_EXE_edudns");
/// A curated adult name: blocked from the first answer on.
const FLOOR_NAME: &str = "pornhub.com";

/// What the first start and the restart measured.
pub struct Startup {
    pub first_answer: Duration,
    pub first_loaded: Duration,
    /// RSS when loaded (current, peak), MiB.
    pub first_rss: (f64, f64),
    /// `edudns_list_entries` once every list is loaded.
    pub total_rules: f64,
    pub restart_answer: Duration,
    pub restart_loaded: Duration,
    pub restart_rss: (f64, f64),
}

/// The server after its restart, still running, and what it needs to keep
/// running (its list mirror and state directory).
pub struct Started {
    pub server: Server,
    pub startup: Startup,
    _mirror: Mirror,
    _state: tempfile::TempDir,
}

/// Starts edudns on the installed configuration, waits until every
/// `available` source is loaded and every `missing` one has failed, then
/// does the same again after a restart. The log goes to
/// `out_dir/edudns.log`.
pub async fn start_and_restart(
    sources: &[DefaultSource],
    available: &[&str],
    missing: &[&str],
    out_dir: &Path,
) -> Started {
    let mirror = Mirror::start(mirror_bodies(sources), true).await;
    let upstream = net::start_upstream().await;
    let state = tempfile::tempdir().unwrap();
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let management: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(state.path(), &mirror, upstream, dns, management);
    let log = out_dir.join("edudns.log");
    let _ = std::fs::remove_file(&log);

    eprintln!("efficacy: first start, no cached lists");
    let mut server = start_server(&config, &log, dns, management);
    let first_answer = server.first_answer().await;
    let first_loaded = server.all_loaded(available, missing).await;
    let first_rss = server.rss();
    let metrics = net::http_get(management, "/metrics")
        .await
        .unwrap_or_default();
    let total_rules = net::metric(&metrics, "edudns_list_entries", &[]);
    eprintln!(
        "efficacy: first answer {:.3} s, all lists {:.1} s, RSS {:.0} MiB",
        first_answer.as_secs_f64(),
        first_loaded.as_secs_f64(),
        first_rss.0
    );
    server.stop();

    eprintln!("efficacy: restart from the compiled lists");
    let mut server = start_server(&config, &log, dns, management);
    let restart_answer = server.first_answer().await;
    let restart_loaded = server.all_loaded(available, missing).await;
    let restart_rss = server.rss();
    eprintln!(
        "efficacy: restart first answer {:.3} s, all lists {:.3} s, RSS {:.0} MiB",
        restart_answer.as_secs_f64(),
        restart_loaded.as_secs_f64(),
        restart_rss.0
    );
    Started {
        server,
        startup: Startup {
            first_answer,
            first_loaded,
            first_rss,
            total_rules,
            restart_answer,
            restart_loaded,
            restart_rss,
        },
        _mirror: mirror,
        _state: state,
    }
}

/// The installed configuration on these loopback addresses, with its lists
/// from `mirror` and its state in `state`; the path it is written to.
fn write_config(
    state: &Path,
    mirror: &Mirror,
    upstream: SocketAddr,
    dns: SocketAddr,
    management: SocketAddr,
) -> PathBuf {
    let text = installed_config(
        state,
        &mirror.url(),
        &dns.to_string(),
        &management.to_string(),
    );
    let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
    doc["upstream"]["servers"] = toml_edit::value(
        [upstream.to_string()]
            .into_iter()
            .collect::<toml_edit::Array>(),
    );
    // The benchmark asks hundreds of thousands of names from one address;
    // the per-client rate limit would answer most of them REFUSED.
    for band in doc["band"].as_array_of_tables_mut().unwrap().iter_mut() {
        band.remove("max_qps_per_client");
    }
    let config = state.join("edudns.toml");
    std::fs::write(&config, doc.to_string()).unwrap();
    config
}

/// A free loopback port for both UDP and TCP.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running `edudns serve`.
pub struct Server {
    child: Child,
    pub dns: SocketAddr,
    pub management: SocketAddr,
    started: Instant,
}

fn start_server(config: &Path, log: &Path, dns: SocketAddr, management: SocketAddr) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let started = Instant::now();
    let child = Command::new(EDUDNS)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("EDUDNS_LOG", "info")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start edudns");
    Server {
        child,
        dns,
        management,
        started,
    }
}

impl Server {
    /// The RSS at the end (current, peak), MiB; saves the metrics to
    /// `out_dir/metrics.txt` and stops the server.
    pub async fn finish(&mut self, out_dir: &Path) -> (f64, f64) {
        let rss = self.rss();
        if let Some(body) = net::http_get(self.management, "/metrics").await {
            std::fs::write(out_dir.join("metrics.txt"), body).unwrap();
        }
        self.stop();
        rss
    }

    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn first_answer(&mut self) -> Duration {
        let thcs: IpAddr = THCS.parse().unwrap();
        let sinkhole: Ipv4Addr = SINKHOLE.parse().unwrap();
        loop {
            if net::ask_one(self.dns, thcs, FLOOR_NAME, sinkhole).await == Some(Verdict::Blocked) {
                return self.started.elapsed();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("edudns exited with {status}: see target/efficacy/edudns.log");
            }
            assert!(
                self.started.elapsed() < Duration::from_secs(60),
                "no answer within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until every available source is loaded and every missing one
    /// has failed; the time since start.
    async fn all_loaded(&self, available: &[&str], missing: &[&str]) -> Duration {
        loop {
            if let Some(body) = net::http_get(self.management, "/metrics").await {
                let loaded = available
                    .iter()
                    .filter(|s| {
                        net::metric(&body, "edudns_list_source_entries", &[("source", s)]) > 0.0
                    })
                    .count();
                let failed = missing
                    .iter()
                    .filter(|s| {
                        net::metric(
                            &body,
                            "edudns_list_downloads_total",
                            &[("source", s), ("result", "rejected")],
                        ) > 0.0
                    })
                    .count();
                if loaded == available.len() && failed == missing.len() {
                    return self.started.elapsed();
                }
            }
            assert!(
                self.started.elapsed() < Duration::from_secs(600),
                "lists not loaded after 600 s: see target/efficacy/edudns.log"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
