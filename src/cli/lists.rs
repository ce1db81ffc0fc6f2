//! `edudns lists status` and `edudns lists update`.

use super::common::{EXIT_USAGE, fail, load_config};
use crate::app::reload::ConfigSource;
use std::process::ExitCode;

/// `edudns lists status`: every list, its state, entries and the lines
/// ignored for protected names.
pub fn status(source: &ConfigSource) -> ExitCode {
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
pub fn update(source: &ConfigSource, only: Option<&str>) -> ExitCode {
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
