//! `edudns report` and `edudns keys`: reports from the durable store,
//! signing, verification, and merges (the replicas of a school, the schools
//! of a district). Returns exit codes.

use super::common::{EXIT_DATA, EXIT_USAGE, fail, load_config, open, write_out};
use crate::app::reload::ConfigSource;
use crate::stats::report::{self, MergeError, MergeWarning, Report, Stage};
use crate::stats::sign::{self, SignedReport};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Action {
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
    /// Báo cáo của phòng / District report from what the schools sent to this office ([upload] → /api/v1/ingest)
    District {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Từ ngày / First day, YYYY-MM-DD
        #[arg(long)]
        from: String,
        /// Đến ngày / Last day, YYYY-MM-DD (inclusive)
        #[arg(long)]
        to: String,
        /// Các trường / Schools: `all` or ids separated by commas
        #[arg(long, default_value = "all")]
        schools: String,
        /// json (signed with <key_dir>/office.key when it exists), csv or html
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
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

/// `edudns report verify`, `merge` and `district`.
pub fn run_action(action: Action) -> ExitCode {
    match action {
        Action::District {
            config,
            from,
            to,
            schools,
            format,
            output,
        } => {
            let source = super::common::source_for(config);
            let (config, store) = match open(&source) {
                Ok(opened) => opened,
                Err(code) => return code,
            };
            let wanted: Option<Vec<String>> = (schools != "all")
                .then(|| schools.split(',').map(|s| s.trim().to_string()).collect());
            match crate::office::district::district_report(
                store.connection(),
                &from,
                &to,
                wanted.as_deref(),
            ) {
                Ok(merged) => {
                    let key = config.stats.key_dir.join("office.key");
                    match render(merged.report, &format, Signing::IfKey(&key)) {
                        Ok(text) => write_out(output.as_deref(), &text),
                        Err(e) => fail(EXIT_USAGE, e),
                    }
                }
                Err(e) => fail(EXIT_DATA, e),
            }
        }
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
