//! `edudns tokens`, `edudns reviews` and `edudns ca`: the API tokens, the
//! "blocked by mistake" requests and the school CA, from the command line.

use super::common::{EXIT_USAGE, fail, load_config, open};
use crate::app::reload::ConfigSource;
use std::process::ExitCode;

/// `edudns tokens create --role R --name N`
pub fn tokens_create(source: &ConfigSource, role: &str, name: &str) -> ExitCode {
    use crate::admin::tokens::{self, Role};
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Some((school, band)) = tokens::parse_band_role(role) {
        return band_token_create(&config, school, band, name);
    }
    let role = match Role::parse(role) {
        Ok(role) => role,
        Err(e) => return fail(EXIT_USAGE, format!("{e}, or band:<school>/<band>")),
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

/// `edudns tokens create --role band:<school>/<band>`: a band token for
/// encrypted DNS, in its own file.
fn band_token_create(
    config: &crate::config::Config,
    school: &str,
    band: &str,
    name: &str,
) -> ExitCode {
    if !config.schools.iter().any(|s| s.id == school) {
        return fail(
            EXIT_USAGE,
            format!("unknown school {school:?} in {}", config.path.display()),
        );
    }
    if !config.bands.iter().any(|b| b.id == band) {
        return fail(
            EXIT_USAGE,
            format!("unknown band {band:?} in {}", config.path.display()),
        );
    }
    let file = &config.encrypted_dns.tokens_file;
    match crate::admin::tokens::create_band(file, school, band, name) {
        Ok((token, stored)) => {
            println!("{token}");
            let domain = config
                .encrypted_dns
                .token_domain
                .as_deref()
                .unwrap_or("<encrypted_dns.token_domain>");
            eprintln!(
                "mã nhóm lớp {id} ({school}/{band}, {holder}) đã lưu dạng băm trong / band token {id} stored hashed in {path} — copy it now, it is not shown again\n  DoT (Android Private DNS): {token}.{domain}\n  DoH: https://<this server>/dns-query/{token}",
                id = stored.id,
                holder = stored.name,
                path = file.display(),
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
    let mut rows = Vec::new();
    for path in [&config.admin.tokens_file, &config.encrypted_dns.tokens_file] {
        match crate::admin::tokens::read(path) {
            Ok(file) => rows.extend(file.tokens),
            Err(e) => return fail(1, e),
        }
    }
    println!("{:<10} {:<20} {:<22} name", "id", "role", "created (UTC)");
    for t in rows {
        let created = jiff::Timestamp::from_second(t.created_at)
            .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        println!("{:<10} {:<20} {:<22} {}", t.id, t.role, created, t.name);
    }
    ExitCode::SUCCESS
}

/// `edudns tokens revoke ID`
pub fn tokens_revoke(source: &ConfigSource, id: &str) -> ExitCode {
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let revoked = crate::admin::tokens::revoke(&config.admin.tokens_file, id).and_then(|api| {
        Ok(api || crate::admin::tokens::revoke(&config.encrypted_dns.tokens_file, id)?)
    });
    match revoked {
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

/// `edudns ca issue --name N…`: a server certificate signed by the school
/// CA, for the DoT/DoH listeners (`encrypted_dns.certificate`).
pub fn ca_issue(source: &ConfigSource, names: &[String], out: &std::path::Path) -> ExitCode {
    let config = match load_config(source) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match crate::web::school_ca::issue(&config.warning_page.ca_dir, names, out) {
        Ok((cert, key)) => {
            println!(
                "đã cấp / issued {} and {} for {} — set encrypted_dns.certificate and private_key to them and send SIGHUP (devices must trust the school CA)",
                cert.display(),
                key.display(),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
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
