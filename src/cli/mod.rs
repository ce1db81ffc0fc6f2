//! The `edudns` command line: parses the arguments and dispatches each
//! command to the library.
//!
//! Uses: every room (it is the top). Used by: `src/main.rs` only.

mod commands;

use crate::app::reload::{ConfigSource, LoadError, Overrides};
use crate::config::{self, ConfigError};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tracing::{error, info};

/// Default configuration file, relative to the working directory.
const DEFAULT_CONFIG: &str = "config/edudns.toml";

#[derive(Parser)]
#[command(
    name = "edudns",
    version,
    about = "Bộ lọc DNS cho trường học / Content-filtering DNS resolver for schools",
    long_about = "edudns lọc truy vấn DNS theo khối lớp (danh mục nội dung bị chặn) và trả về trang cảnh báo.\n\
                  edudns filters DNS by grade band (blocked content categories) and answers blocked names with a warning page."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chạy máy chủ DNS / Run the DNS server
    Serve {
        /// Tệp cấu hình / Config file [default: config/edudns.toml, else the embedded demo config]
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Địa chỉ nghe DNS (thay cho cấu hình) / DNS listen address, replaces server.dns_listen (repeatable)
        #[arg(long = "dns-listen", value_name = "ADDR")]
        dns_listen: Vec<SocketAddr>,
        /// Địa chỉ trang cảnh báo / Sinkhole web listener, replaces server.http_listen
        #[arg(long = "http-listen", value_name = "ADDR")]
        http_listen: Option<SocketAddr>,
        /// Máy chủ DNS phía trên / Upstream server, replaces upstream.servers (repeatable)
        #[arg(long = "upstream", value_name = "ADDR", value_parser = parse_upstream)]
        upstream: Vec<SocketAddr>,
    },
    /// Kiểm tra tệp cấu hình / Validate a config file (and its lists) without starting
    CheckConfig {
        /// Tệp cấu hình / Config file
        file: PathBuf,
    },
    /// Báo cáo thống kê cho cơ quan quản lý / Statistics report for the authorities
    #[command(args_conflicts_with_subcommands = true)]
    Report {
        #[command(subcommand)]
        action: Option<ReportAction>,
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Mã trường / School id
        #[arg(long)]
        school: Option<String>,
        /// Từ ngày / First day, YYYY-MM-DD (school's local date)
        #[arg(long)]
        from: Option<String>,
        /// Đến ngày / Last day, YYYY-MM-DD (inclusive)
        #[arg(long)]
        to: Option<String>,
        /// json (signed when the school has a key), csv or html
        #[arg(long, default_value = "json")]
        format: String,
        /// Ghi ra tệp / Write to this file instead of standard output
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Đầu vào để gộp, không công bố / Merge input of one replica: exact counts, nothing hidden, JSON only; give it only to `report merge`, which applies k-anonymity to the sum
        #[arg(long)]
        for_merge: bool,
    },
    /// Yêu cầu xem xét "chặn nhầm" / "Blocked by mistake" review requests
    Reviews {
        #[command(subcommand)]
        action: ReviewsAction,
    },
    /// Danh sách đăng ký / Subscribed lists: status and manual update
    Lists {
        #[command(subcommand)]
        action: ListsAction,
    },
    /// CA của trường cho trang cảnh báo HTTPS / School CA for the HTTPS warning page
    Ca {
        #[command(subcommand)]
        action: CaAction,
    },
    /// Mã truy cập API và bảng điều khiển / API and console tokens
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Khoá ký báo cáo / Report signing keys
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Kiểm tra máy chủ đang chạy / Check a running server (container and monitoring health checks)
    ///
    /// Asks the management listener's /healthz (process up) or, with --ready,
    /// /readyz (lists loaded, upstream reachable); exit 0 when it answers 200, 1 otherwise.
    Health {
        /// Hỏi /readyz / Ask /readyz instead of /healthz
        #[arg(long)]
        ready: bool,
        /// Địa chỉ quản lý / Management listener address (server.management_listen)
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9153")]
        management: SocketAddr,
    },
    /// Giải thích vì sao một tên bị chặn / Explain the verdict for a client and a name
    Explain {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Địa chỉ IP của máy trạm / Client IP address
        #[arg(long)]
        client: IpAddr,
        /// Thời điểm (giờ địa phương của trường) / Evaluate at this local time of the school, e.g. "2026-11-24 08:00" [default: now]
        #[arg(long)]
        at: Option<String>,
        /// Tên miền / Domain name
        name: String,
    },
}

#[derive(Subcommand)]
enum ReportAction {
    /// Kiểm tra chữ ký / Verify a signed JSON report
    Verify {
        file: PathBuf,
        /// Khoá công khai của trường / The school's public key file (<school>.pub)
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Gộp báo cáo / Verify and sum reports: the replicas of a school, the schools of a district
    ///
    /// Các báo cáo cùng mã trường là của các máy chủ (bản sao) phục vụ trường đó: trường
    /// chỉ được liệt kê một lần và số liệu được cộng lại. Báo cáo tạo bằng `report
    /// --for-merge` có số liệu chính xác; ngưỡng k-ẩn danh được áp dụng cho tổng. Cùng một
    /// số liệu đưa vào hai lần sẽ bị từ chối.
    ///
    /// Reports naming the same school are its replicas: the school is listed once and
    /// their numbers summed. Reports made with `report --for-merge` are exact, and
    /// k-anonymity is applied to the sum, so the result is the report one server would
    /// have made. A cell hidden in an input stays hidden (≥n), with a warning. The same
    /// statistics given twice (the same file, or two reports of one database over the
    /// same days) are refused.
    Merge {
        files: Vec<PathBuf>,
        /// Thư mục khoá công khai / Directory of public keys: <school>.pub, and <school>.<replica>.pub for replicas with keys of their own
        #[arg(long)]
        key_dir: Option<PathBuf>,
        /// Khoá công khai được chấp nhận / Accept inputs signed by this public key (repeatable)
        #[arg(long = "key", value_name = "PUB")]
        keys: Vec<PathBuf>,
        /// Ký báo cáo gộp / Sign the merged JSON with this private key (e.g. keys/<school>.key)
        #[arg(long, value_name = "KEY")]
        sign_key: Option<PathBuf>,
        /// json, csv or html
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ReviewsAction {
    /// Liệt kê / List requests (newest first)
    List {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// pending, accepted or rejected
        #[arg(long)]
        status: Option<String>,
    },
    /// Chấp nhận: thêm vào danh sách cho phép của trường / Accept: allow the domain for the school
    Accept {
        #[arg(short, long)]
        config: Option<PathBuf>,
        id: i64,
    },
    /// Từ chối / Reject
    Reject {
        #[arg(short, long)]
        config: Option<PathBuf>,
        id: i64,
    },
}

#[derive(Subcommand)]
enum ListsAction {
    /// Trạng thái / Every list: entries, last download, last error
    Status {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Tải lại ngay / Download subscribed lists now (the running service reloads them)
    Update {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Chỉ nguồn này / Only this subscription
        #[arg(long)]
        source: Option<String>,
    },
}

#[derive(Subcommand)]
enum CaAction {
    /// Tạo CA / Create the school CA in warning_page.ca_dir (install ca.crt on managed devices)
    Init {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokensAction {
    /// Tạo mã (in ra một lần) / Create a token (printed once, stored hashed)
    Create {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// office | school:<id> | auditor
        #[arg(long)]
        role: String,
        /// Người dùng, vd. "Phòng GD&ĐT — chị Lan" / Who holds it (shown in the audit log)
        #[arg(long)]
        name: String,
    },
    /// Liệt kê / List tokens (id, role, holder; never the secret)
    List {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Thu hồi / Revoke a token by id
    Revoke {
        #[arg(short, long)]
        config: Option<PathBuf>,
        id: String,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Tạo khoá cho một trường / Create a school's Ed25519 signing key (in stats.key_dir)
    Init {
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(long)]
        school: String,
    },
}

fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    config::validate::parse_socket_addr(text, 53)
        .ok_or_else(|| format!("{text:?} is not an address (IP or IP:port)"))
}

/// Exit codes (sysexits-style): config problems are 78, start failures 69.
const EXIT_CONFIG: u8 = 78;
const EXIT_UNAVAILABLE: u8 = 69;

fn source_for(config: Option<PathBuf>) -> ConfigSource {
    match config {
        Some(path) => ConfigSource::File(path),
        None if Path::new(DEFAULT_CONFIG).exists() => ConfigSource::File(DEFAULT_CONFIG.into()),
        None => ConfigSource::Embedded,
    }
}

/// Runs the command line (`src/main.rs`).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its progress; the one-shot commands print their result
    // and only warnings (skipped list lines) go to the log.
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDUDNS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve {
            config,
            dns_listen,
            http_listen,
            upstream,
        } => {
            let overrides = Overrides {
                dns_listen,
                http_listen: http_listen.into_iter().collect(),
                upstreams: upstream,
                fast_path: None,
            };
            serve(source_for(config), overrides)
        }
        Command::CheckConfig { file } => check_config(&file),
        Command::Report {
            action: Some(action),
            ..
        } => commands::run_action(action.into()),
        Command::Report {
            action: None,
            config,
            school,
            from,
            to,
            format,
            output,
            for_merge,
        } => commands::generate(
            &source_for(config),
            school.as_deref(),
            from.as_deref(),
            to.as_deref(),
            &format,
            output.as_deref(),
            for_merge,
        ),
        Command::Tokens { action } => match action {
            TokensAction::Create { config, role, name } => {
                commands::tokens_create(&source_for(config), &role, &name)
            }
            TokensAction::List { config } => commands::tokens_list(&source_for(config)),
            TokensAction::Revoke { config, id } => {
                commands::tokens_revoke(&source_for(config), &id)
            }
        },
        Command::Keys {
            action: KeysAction::Init { config, school },
        } => commands::keys_init(&source_for(config), &school),
        Command::Lists { action } => match action {
            ListsAction::Status { config } => commands::lists_status(&source_for(config)),
            ListsAction::Update { config, source } => {
                commands::lists_update(&source_for(config), source.as_deref())
            }
        },
        Command::Ca {
            action: CaAction::Init { config },
        } => commands::ca_init(&source_for(config)),
        Command::Reviews { action } => match action {
            ReviewsAction::List { config, status } => {
                commands::reviews_list(&source_for(config), status.as_deref())
            }
            ReviewsAction::Accept { config, id } => {
                commands::reviews_decide(&source_for(config), id, true)
            }
            ReviewsAction::Reject { config, id } => {
                commands::reviews_decide(&source_for(config), id, false)
            }
        },
        Command::Health { ready, management } => health(management, ready),
        Command::Explain {
            config,
            client,
            name,
            at,
        } => explain(source_for(config), client, &name, at.as_deref()),
    }
}

/// `edudns health`: one GET to the management listener, 3 s at most.
fn health(management: SocketAddr, ready: bool) -> ExitCode {
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

fn serve(source: ConfigSource, overrides: Overrides) -> ExitCode {
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

impl From<ReportAction> for commands::Action {
    fn from(action: ReportAction) -> Self {
        match action {
            ReportAction::Verify { file, key } => Self::Verify { file, key },
            ReportAction::Merge {
                files,
                key_dir,
                keys,
                sign_key,
                format,
                output,
            } => Self::Merge {
                files,
                key_dir,
                keys,
                sign_key,
                format,
                output,
            },
        }
    }
}

fn check_config(file: &Path) -> ExitCode {
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

fn explain(source: ConfigSource, client: IpAddr, name: &str, at: Option<&str>) -> ExitCode {
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
