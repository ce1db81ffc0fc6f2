#!/usr/bin/env python3
"""Static checks of the deployment files, run by .ci/deploy-check.sh.

    checks.py manifests RENDERED.yaml NAME     properties of a rendered overlay
    checks.py configs RENDERED.yaml OUTDIR REPO
                                               ConfigMap edudns.toml (+ lists) to
                                               OUTDIR, image paths mapped to REPO,
                                               for `edudns check-config`
    checks.py dockerfile REPO                  Dockerfile and .dockerignore
    checks.py metrics REPO FILE...             every edudns_* metric FILE names
                                               is one that src/ registers
    checks.py prom-without-k8s-sd IN OUT       a Prometheus config with its
                                               kubernetes_sd_configs replaced by a
                                               static target (for a promtool built
                                               without Kubernetes discovery)

Each prints what it checked and exits 1 with every problem found.
Needs PyYAML and, for `dockerfile`, dockerfile-parse (both from PyPI).
"""

import fnmatch
import os
import re
import sys

import yaml

PROBLEMS = []


def problem(message):
    PROBLEMS.append(message)


def check(condition, message):
    if not condition:
        problem(message)
    return condition


def finish(what):
    """Prints `ok <what>`, or every problem and exits 1."""
    if PROBLEMS:
        print(f"  FAIL {what.split(':')[0]}")
        for p in PROBLEMS:
            print(f"       - {p}")
        sys.exit(1)
    print(f"  ok   {what}")


def load_rendered(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


# --------------------------------------------------------------- manifests

MANAGEMENT_PORT = 9153
UID = 10053


def port_number(container, port):
    """A probe's port: a number, or the name of a container port."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_manifests(path, name):
    docs = load_rendered(path)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    deployments = by_kind.get("Deployment", [])
    if not check(len(deployments) == 1, f"one Deployment expected, found {len(deployments)}"):
        finish(f"{name}: manifests")
    dep = deployments[0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    check(spec.get("replicas", 1) >= 2, "fewer than 2 replicas")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod runAsNonRoot is not true")
    check(psc.get("runAsUser") == UID, f"pod runAsUser is not {UID}")
    check(pod.get("automountServiceAccountToken") is False, "service account token is mounted")
    keys = {c.get("topologyKey") for c in pod.get("topologySpreadConstraints", [])}
    anti = pod.get("affinity", {}).get("podAntiAffinity")
    check("kubernetes.io/hostname" in keys or anti, "no spreading of replicas across nodes")

    containers = [c for c in pod["containers"] if c["name"] == "edudns"]
    if not check(len(containers) == 1, "no container named edudns"):
        finish(f"{name}: manifests")
    c = containers[0]
    command = c.get("command", []) + c.get("args", [])
    check(command[-3:] == ["serve", "-c", "/etc/edudns/edudns.toml"] or
          command == ["edudns", "serve", "-c", "/etc/edudns/edudns.toml"],
          f"container does not run `edudns serve -c /etc/edudns/edudns.toml`: {command}")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "capabilities: drop is not [ALL]")
    check(caps.get("add") == ["NET_BIND_SERVICE"], "capabilities: add is not [NET_BIND_SERVICE]")
    res = c.get("resources", {})
    for kind in ("cpu", "memory"):
        check(kind in res.get("requests", {}), f"no {kind} request")
    check("memory" in res.get("limits", {}), "no memory limit")
    for probe, path_ in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path_, f"{probe} is not GET {path_}")
        check(port_number(c, get.get("port")) == MANAGEMENT_PORT,
              f"{probe} is not on port {MANAGEMENT_PORT}")
    ports = {(p["containerPort"], p.get("protocol", "TCP")) for p in c.get("ports", [])}
    for want in ((53, "UDP"), (53, "TCP"), (MANAGEMENT_PORT, "TCP")):
        check(want in ports, f"container port {want[0]}/{want[1]} missing")

    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    state = mounts.get("/var/lib/edudns")
    if check(state is not None, "nothing mounted at /var/lib/edudns"):
        vol = volumes.get(state["name"], {})
        check("emptyDir" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol,
              "/var/lib/edudns is not an emptyDir or a PVC")
    config = mounts.get("/etc/edudns")
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    if check(config is not None, "nothing mounted at /etc/edudns"):
        cm_name = volumes.get(config["name"], {}).get("configMap", {}).get("name")
        if check(cm_name in configmaps, f"/etc/edudns: ConfigMap {cm_name} not in the output"):
            data = configmaps[cm_name].get("data", {})
            if check("edudns.toml" in data, f"{cm_name} has no edudns.toml"):
                check_config_text(data["edudns.toml"], f"{cm_name}/edudns.toml")
    # Every other ConfigMap volume refers to a rendered ConfigMap.
    for v in volumes.values():
        ref = v.get("configMap", {}).get("name")
        if ref:
            check(ref in configmaps, f"volume {v['name']}: ConfigMap {ref} not in the output")

    services = by_kind.get("Service", [])
    selector_ok = lambda s: all(labels.get(k) == v for k, v in s["spec"].get("selector", {}).items())
    dns = [s for s in services
           if {(p["port"], p.get("protocol", "TCP")) for p in s["spec"]["ports"]} >= {(53, "UDP"), (53, "TCP")}]
    if check(len(dns) == 1, "one Service with UDP 53 and TCP 53 expected"):
        s = dns[0]["spec"]
        check(selector_ok(dns[0]), "the DNS Service does not select the pods")
        check(s.get("type") in ("LoadBalancer", "NodePort"), "the DNS Service is not LoadBalancer/NodePort")
        check(s.get("externalTrafficPolicy") == "Local",
              "the DNS Service does not keep client addresses (externalTrafficPolicy: Local)")
    metrics = [s for s in services if any(p["port"] == MANAGEMENT_PORT for p in s["spec"]["ports"])]
    if check(len(metrics) == 1, "one Service for port 9153 expected"):
        check(metrics[0]["spec"].get("type", "ClusterIP") == "ClusterIP", "the metrics Service is not ClusterIP")
        check(selector_ok(metrics[0]), "the metrics Service does not select the pods")

    pdbs = by_kind.get("PodDisruptionBudget", [])
    if check(len(pdbs) == 1, "one PodDisruptionBudget expected"):
        p = pdbs[0]["spec"]
        check(p.get("maxUnavailable") == 1 or p.get("minAvailable") == 2,
              "the PodDisruptionBudget is neither maxUnavailable 1 nor minAvailable 2")
        sel = p.get("selector", {}).get("matchLabels", {})
        check(sel and all(labels.get(k) == v for k, v in sel.items()),
              "the PodDisruptionBudget does not select the pods")
    finish(f"{name}: {len(docs)} objects, Deployment/Services/PDB/ConfigMap properties")


def check_config_text(text, where):
    """What the pod needs from the configuration (tomllib is 3.11+)."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - older Python: text checks only
        tomllib = None
    if tomllib is None:
        check('management_listen = "0.0.0.0:9153"' in text, f"{where}: management_listen is not 0.0.0.0:9153")
        return
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problem(f"{where}: not TOML: {e}")
        return
    server = config.get("server", {})
    check(server.get("management_listen") == f"0.0.0.0:{MANAGEMENT_PORT}",
          f"{where}: server.management_listen is not 0.0.0.0:{MANAGEMENT_PORT} (probes and Prometheus)")
    for addr in server.get("dns_listen", []):
        check(addr.startswith("0.0.0.0") or addr.startswith("[::]"),
              f"{where}: dns_listen {addr} is not a wildcard address (a pod cannot bind the Service's)")
    database = config.get("stats", {}).get("database", "")
    check(database.startswith("/var/lib/edudns/"), f"{where}: stats.database is not under /var/lib/edudns")
    cache = config.get("lists", {}).get("cache_dir", "")
    check(cache.startswith("/var/lib/edudns"), f"{where}: lists.cache_dir is not under /var/lib/edudns")


# ----------------------------------------------------------------- configs

# Paths of the pod mapped to files of the repository or the check's folder.
def map_paths(text, outdir, repo):
    text = text.replace("/usr/share/edudns/lists/", os.path.join(repo, "blocklists", "curated") + "/")
    for pod_path, local in (("/var/lib/edudns", "state"), ("/etc/edudns-keys", "keys"),
                            ("/etc/edudns-tokens", "tokens")):
        text = text.replace(pod_path, os.path.join(outdir, local))
    return text


def extract_configs(path, outdir, repo):
    """Writes each ConfigMap with an edudns.toml to OUTDIR/<name>/ and prints the paths."""
    repo = os.path.abspath(repo)
    outdir = os.path.abspath(outdir)
    for d in load_rendered(path):
        if d["kind"] != "ConfigMap" or "edudns.toml" not in d.get("data", {}):
            continue
        target = os.path.join(outdir, d["metadata"]["name"])
        os.makedirs(target, exist_ok=True)
        for key, value in d["data"].items():
            if key == "edudns.toml":
                value = map_paths(value, target, repo)
            with open(os.path.join(target, key), "w", encoding="utf-8") as f:
                f.write(value)
        for line in d["data"]["edudns.toml"].splitlines():
            for m in re.finditer(r"/usr/share/edudns/lists/([A-Za-z0-9._-]+)", line):
                check(os.path.isfile(os.path.join(repo, "blocklists", "curated", m.group(1))),
                      f"{d['metadata']['name']}: {m.group(0)} is not a curated list the image ships")
        print(os.path.join(target, "edudns.toml"))
    # A ConfigMap of lists mounted over the image's curated lists must hold
    # exactly the repository's curated lists.
    curated = sorted(n for n in os.listdir(os.path.join(repo, "blocklists", "curated")) if n.endswith(".txt"))
    docs = load_rendered(path)
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        pod = d["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["mountPath"] != "/usr/share/edudns/lists":
                    continue
                name = volumes.get(m["name"], {}).get("configMap", {}).get("name")
                keys = sorted(configmaps.get(name, {}).get("data", {}))
                check(keys == curated, f"ConfigMap {name} over /usr/share/edudns/lists has {keys}, "
                                       f"blocklists/curated has {curated}")
    if PROBLEMS:
        for p in PROBLEMS:
            print(f"  FAIL config: {p}", file=sys.stderr)
        sys.exit(1)


# -------------------------------------------------------------- dockerfile

def dockerignore_included(patterns, path):
    """Docker's rule: the last matching pattern wins; a pattern matches a
    path or any of its parent directories."""
    included = True
    parts = path.split("/")
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().rstrip("/")
        if pattern.startswith("/"):
            pattern = pattern[1:]
        regex = translate_glob(pattern)
        for i in range(1, len(parts) + 1):
            if regex.fullmatch("/".join(parts[:i])):
                included = negate
                break
    return included


def translate_glob(pattern):
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def check_dockerfile(repo):
    from dockerfile_parse import DockerfileParser

    with open(os.path.join(repo, "Dockerfile"), "rb") as f:
        parser = DockerfileParser(fileobj=f)
        instructions = parser.structure
    froms = [i for i in instructions if i["instruction"] == "FROM"]
    check(len(froms) >= 2, "not a multi-stage build (fewer than two FROM)")
    args = {i["value"].split("=", 1)[0]: i["value"].split("=", 1)[1]
            for i in instructions if i["instruction"] == "ARG" and "=" in i["value"]}
    first = froms[0]["value"] if froms else ""
    check("${RUST_IMAGE}" in first and args.get("RUST_IMAGE", "").startswith("rust:"),
          "the build stage's image is not an ARG defaulting to a rust: image")
    final_start = instructions.index(froms[-1]) if froms else 0
    final = instructions[final_start:]
    build = instructions[:final_start]
    runs = " ".join(i["value"] for i in build if i["instruction"] == "RUN")
    check("cargo build --release --locked" in runs, "the build stage does not run cargo build --release --locked")
    users = [i["value"].strip() for i in final if i["instruction"] == "USER"]
    if check(users, "the final stage sets no USER"):
        user = users[-1].split(":")[0]
        check(user not in ("root", "0"), f"the final USER is {users[-1]}")
        check(user in (str(UID), "edudns"), f"the final USER is not {UID}")
    check(any(i["instruction"] == "HEALTHCHECK" for i in final), "no HEALTHCHECK in the final stage")
    for i in instructions:
        if i["instruction"] == "ADD":
            check(not re.search(r"https?://", i["value"]), f"ADD of a URL: {i['value']}")
            problem(f"ADD instead of COPY: {i['value']}")
    exposed = " ".join(i["value"] for i in final if i["instruction"] == "EXPOSE").split()
    for port in ("53/udp", "53/tcp", "9153/tcp"):
        check(port in exposed or (port.endswith("/tcp") and port[:-4] in exposed), f"EXPOSE lacks {port}")
    volumes = " ".join(i["value"] for i in final if i["instruction"] == "VOLUME")
    check("/var/lib/edudns" in volumes, "no VOLUME /var/lib/edudns")
    cmd = [i["value"] for i in final if i["instruction"] in ("CMD", "ENTRYPOINT")]
    check(any("serve" in c for c in cmd) and any("/etc/edudns/edudns.toml" in c for c in cmd),
          "the image does not run `edudns serve -c /etc/edudns/edudns.toml`")
    final_from = froms[-1]["value"] if froms else ""
    check("RUNTIME_IMAGE" in final_from and (args.get("RUNTIME_IMAGE", "").startswith("debian:")
                                             or "distroless" in args.get("RUNTIME_IMAGE", "")),
          "the runtime stage is not debian-slim or distroless")

    # Every file a COPY takes from the context must survive .dockerignore,
    # and so must every file the build compiles in (include_str!).
    with open(os.path.join(repo, ".dockerignore"), encoding="utf-8") as f:
        patterns = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    tracked = []
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in (".git", "target")]
        for name in files:
            tracked.append(os.path.relpath(os.path.join(root, name), repo))
    sources = []
    for i in instructions:
        if i["instruction"] == "COPY" and "--from" not in i["value"]:
            words = [w for w in i["value"].split() if not w.startswith("--")]
            sources += words[:-1]
    for source in sources:
        matches = [t for t in tracked if t == source.rstrip("/") or t.startswith(source.rstrip("/") + "/")
                   or fnmatch.fnmatch(t, source)]
        if check(matches, f"COPY {source}: no such file in the repository"):
            for m in matches:
                check(dockerignore_included(patterns, m), f"COPY {source}: {m} is excluded by .dockerignore")
    for t in tracked:
        if t.startswith("src/") and t.endswith(".rs"):
            with open(os.path.join(repo, t), encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in re.finditer(r'include_(?:str|bytes)!\("([^"]+)"\)', text):
                target = os.path.normpath(os.path.join(os.path.dirname(t), m.group(1)))
                if os.path.exists(os.path.join(repo, target)):
                    check(dockerignore_included(patterns, target),
                          f"{t} compiles in {target}, which .dockerignore excludes")
    for excluded in ("target/debug/edudns", ".git/HEAD"):
        check(not dockerignore_included(patterns, excluded), f".dockerignore lets {excluded} in")
    finish(f"Dockerfile: {len(froms)} stages, USER {users[-1] if users else '?'}, "
           f"HEALTHCHECK, no ADD, {len(sources)} COPY sources inside .dockerignore")


# ----------------------------------------------------------------- metrics

def check_metric_names(repo, files):
    """Rules, tests and the dashboard may only name metrics edudns exports."""
    exported = set()
    for root, _, names in os.walk(os.path.join(repo, "src")):
        for name in names:
            if name.endswith(".rs"):
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    exported.update(re.findall(r'"(edudns_[a-z0-9_]+)"', f.read()))
    # Histograms also export _bucket, _count and _sum.
    exported |= {m + suffix for m in exported for suffix in ("_bucket", "_count", "_sum")}
    used = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # A name after a colon is part of a recorded name (school:edudns_x:rate5m).
        for m in re.finditer(r"(?<![:A-Za-z0-9_])(edudns_[a-z0-9_]+)(?![:A-Za-z0-9_])", text):
            used += 1
            check(m.group(1) in exported, f"{os.path.relpath(path, repo)}: {m.group(1)} is not a metric of src/")
    check(used > 0, "no edudns_ metric found in the files")
    finish(f"metric names: {used} uses in {len(files)} files, all exported by src/")


# ---------------------------------------------------------- prometheus k8s

def prom_without_k8s_sd(src, dst):
    with open(src, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    replaced = 0
    for job in config.get("scrape_configs", []):
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["127.0.0.1:9153"]}]
            replaced += 1
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    print(f"{replaced} kubernetes_sd_configs replaced by a static target")


def main(argv):
    if len(argv) >= 2 and argv[1] == "manifests" and len(argv) == 4:
        check_manifests(argv[2], argv[3])
    elif len(argv) >= 2 and argv[1] == "configs" and len(argv) == 5:
        extract_configs(argv[2], argv[3], argv[4])
    elif len(argv) >= 2 and argv[1] == "dockerfile" and len(argv) == 3:
        check_dockerfile(argv[2])
    elif len(argv) >= 3 and argv[1] == "metrics":
        check_metric_names(argv[2], argv[3:])
    elif len(argv) >= 2 and argv[1] == "prom-without-k8s-sd" and len(argv) == 4:
        prom_without_k8s_sd(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
