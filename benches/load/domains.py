# The blocklist of compare.sh and encrypted.sh: every listed name of the
# real lists in ../shared/data, deduplicated, lower case, one a line.
#   python3 benches/load/domains.py DATA_DIR OUT_FILE
import os, sys
data, out = sys.argv[1], sys.argv[2]
seen = set()
for d in ["ut1", "hagezi", "hostsvn", "blocklistproject", "sinfonietta"]:
    for f in sorted(os.listdir(os.path.join(data, d))):
        for line in open(os.path.join(data, d, f), encoding="utf-8", errors="replace"):
            line = line.split("#")[0].strip()
            if not line:
                continue
            parts = line.split()
            name = (parts[1] if len(parts) > 1 and parts[0] in ("0.0.0.0", "127.0.0.1", "::") else parts[0]).lower().rstrip(".")
            name = name[2:] if name.startswith("*.") else name
            labels = name.split(".")
            if (all(c.isalnum() or c in "-._" for c in name) and len(labels) > 1
                    and all(0 < len(l) <= 63 for l in labels) and not name.replace(".", "").isdigit()):
                seen.add(name)
with open(out, "w") as f:
    f.write("\n".join(sorted(seen)) + "\n")
print(len(seen), "domains")
