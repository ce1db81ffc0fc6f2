#!/usr/bin/env bash
# cargo deny on the dependency tree (config: deny.toml).
#   licences, bans (duplicates warn), sources: offline, always; fail CI.
#   advisories: need the RustSec database from GitHub. Checked when it can
#   be fetched (or a copy fetched earlier is on the machine, with a warning
#   that it may be stale); skipped with a warning, not a failure, when
#   neither is available.
# Called from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  started=$(date +%s)
  cargo install cargo-deny --locked
  echo "deny: installed cargo-deny in $(($(date +%s) - started)) s"
fi

# --offline runs `cargo metadata` without the network, which needs every
# locked package on disk, the other platforms' too (a build fetches only
# this one's): fetch them first (crates.io).
cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources

db_dir="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if timeout "${DENY_FETCH_TIMEOUT:-120}" cargo deny fetch db >/dev/null 2>&1; then
  cargo deny --offline check advisories
elif compgen -G "$db_dir/advisory-db-*/crates" >/dev/null; then
  echo "deny: warning: cannot fetch the advisory database; checking against the copy in $db_dir (may be stale)" >&2
  cargo deny --offline check advisories
else
  echo "deny: warning: advisory database unreachable (github.com) and none cached: advisories NOT checked" >&2
fi
