#!/usr/bin/env bash
# Builds the Debian package target/debian/edudns_<version>-1_<arch>.deb.
#
#   bash deploy/debian/build-deb.sh                 # release build
#   bash deploy/debian/build-deb.sh --no-build      # package target/release/edudns as it is
#   bash deploy/debian/build-deb.sh --deb-revision 2  # any other cargo-deb flag
#
# The package's /etc/edudns/edudns.toml is config/examples/school.toml with
# its list paths pointed at /etc/edudns/lists/ (where the curated lists go).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi
mkdir -p target/debian-assets
sed 's|"\.\./\.\./blocklists/curated/|"lists/|g' config/examples/school.toml > target/debian-assets/edudns.toml
if grep -q '\.\./\.\./' target/debian-assets/edudns.toml; then
  echo "build-deb: a list path in config/examples/school.toml was not rewritten" >&2
  exit 1
fi
cargo deb --locked "$@"
