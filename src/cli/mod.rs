//! The `edudns` command line: parses the arguments and dispatches each
//! command to the library.
//!
//! Uses: every room (it is the top). Used by: `src/main.rs` only.

mod admin;
mod common;
mod lists;
mod report;
mod serve;

use crate::app::reload::Overrides;
use crate::config;
use clap::{Parser, Subcommand};
use common::source_for;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// Máy chủ DNS phía trên / Upstream server (IP[:port], tls://IP:853#name, https://host/dns-query), replaces upstream.servers (repeatable)
        #[arg(long = "upstream", value_name = "SERVER", value_parser = parse_upstream)]
        upstream: Vec<config::UpstreamServer>,
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
        action: Option<report::Action>,
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
    /// Cấp chứng chỉ máy chủ / Issue a server certificate for DoT/DoH, signed by the school CA
    Issue {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Tên máy chủ / Server name, e.g. dns.truong.edu.vn and *.dns.truong.edu.vn (repeatable)
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Thư mục ghi dns.crt và dns.key / Directory for dns.crt and dns.key
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokensAction {
    /// Tạo mã (in ra một lần) / Create a token (printed once, stored hashed)
    Create {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// office | school:<id> | auditor | band:<school>/<band> (encrypted DNS)
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

fn parse_upstream(text: &str) -> Result<config::UpstreamServer, String> {
    text.parse()
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
            serve::serve(source_for(config), overrides)
        }
        Command::CheckConfig { file } => serve::check_config(&file),
        Command::Report {
            action: Some(action),
            ..
        } => report::run_action(action),
        Command::Report {
            action: None,
            config,
            school,
            from,
            to,
            format,
            output,
            for_merge,
        } => report::generate(
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
                admin::tokens_create(&source_for(config), &role, &name)
            }
            TokensAction::List { config } => admin::tokens_list(&source_for(config)),
            TokensAction::Revoke { config, id } => admin::tokens_revoke(&source_for(config), &id),
        },
        Command::Keys {
            action: KeysAction::Init { config, school },
        } => report::keys_init(&source_for(config), &school),
        Command::Lists { action } => match action {
            ListsAction::Status { config } => lists::status(&source_for(config)),
            ListsAction::Update { config, source } => {
                lists::update(&source_for(config), source.as_deref())
            }
        },
        Command::Ca {
            action: CaAction::Init { config },
        } => admin::ca_init(&source_for(config)),
        Command::Ca {
            action: CaAction::Issue { config, names, out },
        } => admin::ca_issue(&source_for(config), &names, &out),
        Command::Reviews { action } => match action {
            ReviewsAction::List { config, status } => {
                admin::reviews_list(&source_for(config), status.as_deref())
            }
            ReviewsAction::Accept { config, id } => {
                admin::reviews_decide(&source_for(config), id, true)
            }
            ReviewsAction::Reject { config, id } => {
                admin::reviews_decide(&source_for(config), id, false)
            }
        },
        Command::Health { ready, management } => serve::health(management, ready),
        Command::Explain {
            config,
            client,
            name,
            at,
        } => serve::explain(source_for(config), client, &name, at.as_deref()),
    }
}
