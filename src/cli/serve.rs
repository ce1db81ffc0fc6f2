//! `edudns serve`, `check-config`, `health` and `explain`: running the
//! service and asking it (or its configuration) questions.

use super::common::{DEFAULT_CONFIG, EXIT_CONFIG, EXIT_UNAVAILABLE};
use crate::app::reload::{ConfigSource, LoadError, Overrides};
use crate::config::{self, ConfigError};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use tracing::{error, info};

/// `edudns health`: one GET to the management listener, 3 s at most.
pub fn health(management: SocketAddr, ready: bool) -> ExitCode {
    let path = if ready { "readyz" } else { "healthz" };
    let url = format!("http://{management}/{path}");
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            runtime.block_on(async {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(3))
                    .no_proxy()
                    .build()
                    .map_err(|e| e.to_string())?;
                let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                Ok::<_, String>((status, body))
            })
        });
    match outcome {
        Ok((status, body)) if status.is_success() => {
            println!("{url}: {status} {}", body.trim());
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("{url}: {status} {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{url}: không kết nối được / cannot connect: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn serve(source: ConfigSource, overrides: Overrides) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    runtime.block_on(async {
        if let ConfigSource::Embedded = source {
            info!("{DEFAULT_CONFIG} not found: using the embedded demo configuration");
        }
        let mut running = match crate::app::start(source, overrides).await {
            Ok(running) => running,
            // No central policy yet: the office may come back, so systemd
            // should retry (69), unlike a broken file (78, no retry).
            Err(crate::app::StartError::Load(LoadError::Config(
                e @ ConfigError::CentralPolicy { .. },
            ))) => {
                eprintln!("edudns: {e}");
                return ExitCode::from(EXIT_UNAVAILABLE);
            }
            Err(crate::app::StartError::Load(e)) => {
                eprintln!("edudns: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            Err(e) => {
                eprintln!("edudns: {e}");
                return ExitCode::from(EXIT_UNAVAILABLE);
            }
        };
        wait_for_shutdown().await;
        info!("shutting down");
        running.shutdown();
        ExitCode::SUCCESS
    })
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
pub fn check_config(file: &Path) -> ExitCode {
    let config = match config::load(file) {
        Ok(config) => config,
        Err(error) => return report_config_error(&error),
    };
    match crate::snapshot::build(config, 1) {
        Ok(snapshot) => {
            let skipped: usize = snapshot.lists_loaded.iter().map(|l| l.skipped).sum();
            let subscriptions = snapshot.config.downloads().len();
            let downloaded = snapshot
                .lists_loaded
                .iter()
                .filter(|l| l.subscribed)
                .count();
            println!(
                "{}: OK — {} schools, {} bands, {} categories, {} lists, {} listed domains, {} skipped list lines",
                file.display(),
                snapshot.config.schools.len(),
                snapshot.config.bands.len(),
                snapshot.config.categories.len(),
                snapshot.lists_loaded.len(),
                snapshot.lists.domain_count(),
                skipped
            );
            if downloaded < subscriptions {
                // Not an error: a new install has no copies yet.
                println!(
                    "  {} of {subscriptions} subscribed lists are not downloaded yet: edudns serve fetches them in the background at start (edudns lists update fetches them now); the local lists filter meanwhile",
                    subscriptions - downloaded
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn report_config_error(error: &ConfigError) -> ExitCode {
    eprintln!("{error}");
    ExitCode::from(EXIT_CONFIG)
}

pub fn explain(source: ConfigSource, client: IpAddr, name: &str, at: Option<&str>) -> ExitCode {
    let loaded = crate::app::reload::load_snapshot(&source, &Overrides::default(), 1);
    match loaded {
        Ok(mut snapshot) => {
            // Takedown entries in force live in the statistics database.
            if snapshot.config.stats.database.exists()
                && let Ok(store) = crate::stats::store::Store::open(&snapshot.config.stats.database)
            {
                let overlay = std::sync::Arc::new(crate::takedown::Takedowns::default());
                let _ = crate::takedown::load(store.connection(), &overlay);
                snapshot.takedowns = overlay;
            }
            let when = match at {
                None => jiff::Timestamp::now(),
                Some(text) => {
                    // Local time of the client's school (or UTC+7 outside any school).
                    let tz = snapshot
                        .classify(client)
                        .map(|c| snapshot.config.schools[c.school].timezone.clone())
                        .unwrap_or_else(|| jiff::tz::TimeZone::fixed(jiff::tz::offset(7)));
                    match text
                        .replace(' ', "T")
                        .parse::<jiff::civil::DateTime>()
                        .ok()
                        .and_then(|dt| dt.to_zoned_datetime(tz).ok())
                    {
                        Some(zoned) => zoned.timestamp(),
                        None => {
                            eprintln!(
                                "edudns: --at {text:?}: write the school's local time as YYYY-MM-DD HH:MM"
                            );
                            return ExitCode::from(2);
                        }
                    }
                }
            };
            print!(
                "{}",
                crate::snapshot::explain::explain(&snapshot, client, name, when)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("edudns: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
