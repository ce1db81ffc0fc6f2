//! `edudns report` and `edudns keys`: reports from the durable store,
//! signing, verification, and merges (the replicas of a school, the schools
//! of a district). Returns exit codes.

use crate::app::reload::ConfigSource;
use crate::config;
use crate::stats::report::{self, MergeError, MergeWarning, Report, Stage};
use crate::stats::sign::{self, SignedReport};
use crate::stats::store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code of bad input (sysexits EX_DATAERR): a tampered or unreadable report.
const EXIT_DATA: u8 = 65;
const EXIT_USAGE: u8 = 64;
const EXIT_CONFIG: u8 = 78;

pub enum Action {
    Verify {
        file: PathBuf,
        key: Option<PathBuf>,
    },
    Merge {
        files: Vec<PathBuf>,
        /// Each input must be signed by a key of its school in here
        /// (`<school>.pub` or `<school>.<replica>.pub`)…
        key_dir: Option<PathBuf>,
        /// …or by one of these `.pub` files.
        keys: Vec<PathBuf>,
        /// Private key that signs the merged JSON.
        sign_key: Option<PathBuf>,
        format: String,
        output: Option<PathBuf>,
    },
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("edudns: {message}");
    ExitCode::from(code)
}

fn load_config(source: &ConfigSource) -> Result<config::Config, ExitCode> {
    match source {
        ConfigSource::File(path) => config::load(path),
        ConfigSource::Embedded => config::load_embedded(),
    }
    .map_err(|e| fail(EXIT_CONFIG, e))
}

/// The configuration and its statistics database.
fn open(source: &ConfigSource) -> Result<(config::Config, Store), ExitCode> {
    let config = load_config(source)?;
    let store = Store::open(&config.stats.database).map_err(|e| fail(1, e))?;
    Ok((config, store))
}

fn write_out(output: Option<&Path>, text: &str) -> ExitCode {
    match output {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, format!("cannot write {}: {e}", path.display())),
        },
    }
}

/// How the JSON is signed.
enum Signing<'a> {
    None,
    /// With this key when the file exists (a school without a key yet).
    IfKey(&'a Path),
    /// With this key, which must exist.
    Key(&'a Path),
}

fn render(report: Report, format: &str, signing: Signing) -> Result<String, String> {
    // A merge input has exact small counts: it is only ever a JSON file for
    // `report merge`, never a printable or spreadsheet report.
    if report.stage == Stage::MergeInput && format != "json" {
        return Err(format!(
            "a merge input (--for-merge) is written as JSON only, for `edudns report merge`; {format} would publish counts below k"
        ));
    }
    match format {
        "json" => {
            let signed = match signing {
                Signing::IfKey(key) => sign::sign_if_key(report, key).map_err(|e| e.to_string())?,
                Signing::Key(key) => sign::sign(report, key).map_err(|e| e.to_string())?,
                Signing::None => SignedReport {
                    report,
                    signature: None,
                },
            };
            serde_json::to_string_pretty(&signed)
                .map_err(|e| e.to_string())
                .map(|s| s + "\n")
        }
        "csv" => Ok(report::to_csv(&report)),
        "html" => Ok(report::to_html(&report)),
        other => Err(format!(
            "unknown format {other:?}: expected json, csv or html"
        )),
    }
}

/// `edudns report --school … --from … --to … [--for-merge]`
pub fn generate(
    source: &ConfigSource,
    school: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    format: &str,
    output: Option<&Path>,
    for_merge: bool,
) -> ExitCode {
    let (Some(school), Some(from), Some(to)) = (school, from, to) else {
        return fail(
            EXIT_USAGE,
            "report needs --school ID --from YYYY-MM-DD --to YYYY-MM-DD",
        );
    };
    let (config, store) = match open(source) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let stage = if for_merge {
        Stage::MergeInput
    } else {
        Stage::Final
    };
    let report = match report::build_stage(
        store.connection(),
        &config,
        school,
        from,
        to,
        config.privacy.k_anonymity,
        stage,
    ) {
        Ok(report) => report,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let (key, _) = sign::key_paths(&config.stats.key_dir, school);
    match render(report, format, Signing::IfKey(&key)) {
        Ok(text) => write_out(output, &text),
        Err(e) => fail(EXIT_USAGE, e),
    }
}

fn read_signed(path: &Path) -> Result<SignedReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not an edudns JSON report: {e}", path.display()))
}

/// `edudns report verify` and `edudns report merge`.
pub fn run_action(action: Action) -> ExitCode {
    match action {
        Action::Verify { file, key } => {
            let signed = match read_signed(&file) {
                Ok(signed) => signed,
                Err(e) => return fail(EXIT_DATA, e),
            };
            match sign::verify(&signed, key.as_deref()) {
                Ok(()) => {
                    let schools: Vec<&str> = signed
                        .report
                        .schools
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect();
                    println!(
                        "{}: chữ ký hợp lệ / signature valid — school {}, {} → {}",
                        file.display(),
                        schools.join(", "),
                        signed.report.from,
                        signed.report.to
                    );
                    if signed.report.stage == Stage::MergeInput {
                        eprintln!(
                            "edudns: {}: đầu vào để gộp, KHÔNG công bố / a merge input (--for-merge), NOT for publication: its counts are exact, below k included; merge it with `edudns report merge`",
                            file.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(
                    EXIT_DATA,
                    format!(
                        "{}: chữ ký KHÔNG hợp lệ / signature INVALID: {e}",
                        file.display()
                    ),
                ),
            }
        }
        Action::Merge {
            files,
            key_dir,
            keys,
            sign_key,
            format,
            output,
        } => merge(
            &files,
            key_dir.as_deref(),
            &keys,
            sign_key.as_deref(),
            &format,
            output.as_deref(),
        ),
    }
}

/// Checks the signature of one merge input: by a key of its school in
/// `key_dir` or one of `keys`; by any key when neither is given.
fn check_input(
    signed: &SignedReport,
    key_dir: Option<&Path>,
    keys: &[PathBuf],
) -> Result<(), String> {
    if key_dir.is_none() && keys.is_empty() {
        return sign::verify(signed, None).map_err(|e| e.to_string());
    }
    let mut allowed = keys.to_vec();
    if let Some(dir) = key_dir {
        match signed.report.schools.as_slice() {
            [school] => allowed
                .extend(sign::school_public_keys(dir, &school.id).map_err(|e| e.to_string())?),
            _ => {
                if keys.is_empty() {
                    return Err(format!(
                        "a report of {} schools is not signed by one school's key: give the key that signed it with --key",
                        signed.report.schools.len()
                    ));
                }
            }
        }
    }
    sign::verify_any(signed, &allowed)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `edudns report merge FILES… [--key-dir DIR] [--key PUB]… [--sign-key KEY]`
fn merge(
    files: &[PathBuf],
    key_dir: Option<&Path>,
    keys: &[PathBuf],
    sign_key: Option<&Path>,
    format: &str,
    output: Option<&Path>,
) -> ExitCode {
    if files.is_empty() {
        return fail(EXIT_USAGE, "merge needs at least one report file");
    }
    if sign_key.is_some() && format != "json" {
        return fail(
            EXIT_USAGE,
            "--sign-key signs JSON: use it with --format json",
        );
    }
    let mut reports = Vec::new();
    for file in files {
        let signed = match read_signed(file) {
            Ok(signed) => signed,
            Err(e) => return fail(EXIT_DATA, e),
        };
        if let Err(e) = check_input(&signed, key_dir, keys) {
            return fail(
                EXIT_DATA,
                format!("{}: {e}; nothing merged", file.display()),
            );
        }
        reports.push(signed.report);
    }
    let merged = match report::merge(&reports) {
        Ok(merged) => merged,
        Err(MergeError::CountedTwice { first, second, why }) => {
            return fail(
                EXIT_DATA,
                format!(
                    "{} and {}: {why}: số liệu sẽ bị tính hai lần / the same statistics would be counted twice; nothing merged",
                    files[first].display(),
                    files[second].display()
                ),
            );
        }
        Err(e) => return fail(EXIT_USAGE, e),
    };
    for warning in &merged.warnings {
        match warning {
            MergeWarning::Hidden {
                input,
                section,
                key,
                shown,
            } => eprintln!(
                "edudns: cảnh báo / warning: {}: {section} {key} is hidden ({shown}): the merged number is a lower bound, not exact (make replica reports with `edudns report --for-merge`)",
                files[*input].display()
            ),
            MergeWarning::Period {
                school,
                first,
                second,
            } => eprintln!(
                "edudns: cảnh báo / warning: {} and {}: replicas of school {school} cover different periods; their sum is not one period's report",
                files[*first].display(),
                files[*second].display()
            ),
        }
    }
    let signing = sign_key.map_or(Signing::None, Signing::Key);
    match render(merged.report, format, signing) {
        Ok(text) => write_out(output, &text),
        Err(e) => fail(EXIT_USAGE, e),
    }
}

/// `edudns keys init --school ID`
pub fn keys_init(source: &ConfigSource, school: &str) -> ExitCode {
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if !config.schools.iter().any(|s| s.id == school) {
        return fail(
            EXIT_USAGE,
            format!("unknown school {school:?} in {}", config.path.display()),
        );
    }
    match sign::init_keys(&config.stats.key_dir, school) {
        Ok((private, public)) => {
            println!(
                "khoá bí mật / private key: {} (mode 0600, keep it on this machine)\nkhoá công khai / public key: {} (send it to the education office)",
                private.display(),
                public.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// `edudns tokens create --role R --name N`
pub fn tokens_create(source: &ConfigSource, role: &str, name: &str) -> ExitCode {
    use crate::admin::tokens::{self, Role};
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let role = match Role::parse(role) {
        Ok(role) => role,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    if let Role::School(id) = &role
        && !config.schools.iter().any(|s| &s.id == id)
    {
        return fail(
            EXIT_USAGE,
            format!("unknown school {id:?} in {}", config.path.display()),
        );
    }
    match tokens::create(&config.admin.tokens_file, &role, name) {
        Ok((token, stored)) => {
            println!("{token}");
            eprintln!(
                "mã {} ({role}, {}) đã lưu dạng băm trong / token {} stored hashed in {} — copy it now, it is not shown again",
                stored.id,
                stored.name,
                stored.id,
                config.admin.tokens_file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// `edudns tokens list`
pub fn tokens_list(source: &ConfigSource) -> ExitCode {
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match crate::admin::tokens::read(&config.admin.tokens_file) {
        Ok(file) => {
            println!("{:<10} {:<20} {:<22} name", "id", "role", "created (UTC)");
            for t in file.tokens {
                let created = jiff::Timestamp::from_second(t.created_at)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                println!("{:<10} {:<20} {:<22} {}", t.id, t.role, created, t.name);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// `edudns tokens revoke ID`
pub fn tokens_revoke(source: &ConfigSource, id: &str) -> ExitCode {
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match crate::admin::tokens::revoke(&config.admin.tokens_file, id) {
        Ok(true) => {
            println!("đã thu hồi / revoked {id}");
            ExitCode::SUCCESS
        }
        Ok(false) => fail(EXIT_USAGE, format!("no token {id:?}")),
        Err(e) => fail(1, e),
    }
}

/// `edudns reviews list`
pub fn reviews_list(source: &ConfigSource, status: Option<&str>) -> ExitCode {
    let (_, store) = match open(source) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    match crate::admin::reviews::list(store.connection(), status) {
        Ok(reviews) => {
            println!(
                "{:>5}  {:<10}  {:<9}  {:<12}  {:<10}  {:<14}  {:<32}  comment",
                "id", "day", "status", "school", "band", "category", "domain"
            );
            for r in reviews {
                println!(
                    "{:>5}  {:<10}  {:<9}  {:<12}  {:<10}  {:<14}  {:<32}  {}",
                    r.id, r.day, r.status, r.school, r.band, r.category, r.domain, r.comment
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// `edudns reviews accept|reject ID`
pub fn reviews_decide(source: &ConfigSource, id: i64, accept: bool) -> ExitCode {
    let (config, store) = match open(source) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    match crate::admin::reviews::decide(
        store.connection(),
        &config,
        id,
        accept,
        jiff::Timestamp::now().as_second(),
    ) {
        Ok(review) if accept => {
            println!(
                "#{id} accepted: {} is now allowed for school {} ({}); the running service reloads it within reload.watch_interval_secs",
                review.domain,
                review.school,
                config.accepted_allow_file(&review.school).display()
            );
            ExitCode::SUCCESS
        }
        Ok(review) => {
            println!("#{id} rejected: {} stays blocked", review.domain);
            ExitCode::SUCCESS
        }
        Err(e) => fail(EXIT_USAGE, e),
    }
}

/// `edudns ca init`
pub fn ca_init(source: &ConfigSource) -> ExitCode {
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let name = match config.schools.first() {
        Some(school) if config.schools.len() == 1 => format!("edudns CA — {}", school.name),
        _ => "edudns school CA".to_string(),
    };
    match crate::web::school_ca::init(&config.warning_page.ca_dir, &name) {
        Ok(cert) => {
            println!(
                "CA created: {} — install it as a trusted root on the devices the school manages (docs/warning-page.md), then restart edudns",
                cert.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}

/// `edudns lists status`: every list, its state, entries and the lines
/// ignored for protected names.
pub fn lists_status(source: &ConfigSource) -> ExitCode {
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let lists = crate::lists::status::collect(&config, jiff::Timestamp::now().as_second());
    print!("{}", crate::lists::status::render(&lists));
    ExitCode::SUCCESS
}

/// `edudns lists update [--source NAME]`: downloads side by side
/// (`[lists] parallel_downloads`), with a progress bar per list on a
/// terminal and one plain line per event otherwise (logs, CI, cron).
pub fn lists_update(source: &ConfigSource, only: Option<&str>) -> ExitCode {
    use crate::lists::download::{self, Refreshed};
    use futures_util::StreamExt;
    use std::io::IsTerminal;
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, e),
    };
    let jobs: Vec<_> = config
        .downloads()
        .into_iter()
        .filter(|(_, _, d)| only.is_none_or(|name| name == d.name))
        .collect();
    if jobs.is_empty() {
        return fail(
            EXIT_USAGE,
            format!(
                "no subscribed list{}",
                only.map(|n| format!(" named {n:?}")).unwrap_or_default()
            ),
        );
    }
    let client = download::client(&config.lists);
    let terminal = std::io::stderr().is_terminal();
    let bars = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:28} [{bar:30}] {bytes:>10}/{total_bytes:10} {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    let total = jobs.len();
    let results = runtime.block_on(
        futures_util::stream::iter(jobs.into_iter().map(|(_, spec, subscription)| {
            let bar = if terminal {
                let bar = bars.add(indicatif::ProgressBar::new(0));
                bar.set_style(style.clone());
                bar.set_prefix(subscription.name.clone());
                bar
            } else {
                println!(
                    "{}: downloading {}",
                    subscription.name,
                    config.lists.fetch_url(&subscription.url)
                );
                indicatif::ProgressBar::hidden()
            };
            let (client, limits) = (&client, &config.lists);
            async move {
                let started = std::time::Instant::now();
                let shown = bar.clone();
                let result = download::refresh_with_progress(
                    client,
                    spec,
                    limits,
                    std::time::Duration::from_secs(1),
                    &move |p| {
                        if let Some(total) = p.total {
                            shown.set_length(total);
                        }
                        shown.set_position(p.received);
                    },
                )
                .await;
                let ms = started.elapsed().as_millis();
                let line = match &result {
                    Ok(Refreshed::Updated { entries }) => {
                        let meta = download::read_meta(&spec.path);
                        format!(
                            "updated, {entries} entries, {} bytes, {ms} ms, {} lines ignored for protected names",
                            meta.bytes, meta.protected_ignored
                        )
                    }
                    Ok(Refreshed::NotModified) => format!("not modified, {ms} ms"),
                    Err(e) => format!("rejected, the previous copy stays: {e}"),
                };
                if terminal {
                    bar.finish_with_message(line);
                } else if result.is_ok() {
                    println!("{}: {line}", subscription.name);
                } else {
                    eprintln!("{}: {line}", subscription.name);
                }
                result.is_ok()
            }
        }))
        .buffer_unordered(config.lists.parallel_downloads.max(1))
        .collect::<Vec<bool>>(),
    );
    let failed = results.iter().filter(|ok| !**ok).count();
    println!(
        "{} of {total} lists downloaded or current; {failed} rejected. A running edudns reloads the new copies on its own.",
        total - failed
    );
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
