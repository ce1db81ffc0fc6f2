#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/).

DNS packets are built here byte by byte; list lines and configs are ours.
Run from the repository root: python3 fuzz/seeds/make_seeds.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def header(ident, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def question(qname, qtype, qclass=1):
    return name(qname) + struct.pack(">HH", qtype, qclass)


def opt(payload=1232, version=0, do=False, options=b""):
    flags = 0x8000 if do else 0
    return b"\x00" + struct.pack(">HHBBHH", 41, payload, 0, version, flags, len(options)) + options


def rr(owner, rtype, ttl, rdata, compressed=False):
    head = b"\xc0\x0c" if compressed else name(owner)
    return head + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def query(ident, qname, qtype, edns=None, flags=0x0100, qclass=1):
    ar = 1 if edns is not None else 0
    return header(ident, flags, ar=ar) + question(qname, qtype, qclass) + (edns or b"")


def write(target, label, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, label), "wb") as f:
        f.write(data)


A, NS, CNAME, SOA, TXT, AAAA, HTTPS, ANY = 1, 2, 5, 6, 16, 28, 65, 255

# request: control byte (handler mode, source, transport) + selector of the
# synthetic upstream answer + the client's packet.
requests = {
    "a-allowed": query(0x1234, "www.example.org", A),
    "a-blocked-edns": query(0x2345, "casino.example", A, opt()),
    "aaaa-deny": query(0x3456, "deny.example", AAAA, opt(do=True)),
    "https-allowed-child": query(0x4567, "ok.bet.example", HTTPS),
    "any": query(0x5678, "www.example.org", ANY),
    "txt-0x20": query(0x6789, "WwW.ExAmPlE.oRg", TXT, opt(4096)),
    "canary": query(0x789A, "use-application-dns.net", A),
    "ddr": query(0x89AB, "_dns.resolver.arpa", 64),
    "safe-search": query(0x9ABC, "www.google.com", A),
    "badvers": query(0xABCD, "example.org", A, opt(version=1)),
    "notimp": query(0xBCDE, "example.org", A, flags=0x2900),
    "chaos": query(0xCDEF, "version.bind", TXT, qclass=3),
    "two-questions": header(0x1111, 0x0100, qd=2) + question("a.example", A) + question("b.example", A),
    "pointer-loop": header(0x2222, 0x0100) + b"\xc0\x0c" + struct.pack(">HH", A, 1),
    "truncated": query(0x3333, "example.org", A)[:20],
}
for i, (label, packet) in enumerate(requests.items()):
    control = bytes([(i * 37) & 0xFF, i])
    write("request", label, control + packet)

# upstream_answer: control byte (handler mode, source, age) + age byte + the
# upstream's response.
soa_rdata = name("ns.example.org") + name("admin.example.org") + struct.pack(">IIIII", 1, 60, 60, 60, 30)
responses = {
    "a-two": header(1, 0x8180, an=2) + question("www.example.org", A)
    + rr("", A, 300, bytes([192, 0, 2, 1]), True) + rr("", A, 60, bytes([192, 0, 2, 2]), True),
    "cname-chain-blocked": header(2, 0x8180, an=2) + question("cdn.example.org", A)
    + rr("", CNAME, 120, name("casino.example"), True) + rr("casino.example", A, 120, bytes([192, 0, 2, 3])),
    "nxdomain-soa": header(3, 0x8183, ns=1) + question("nope.example.org", A)
    + rr("example.org", SOA, 3600, soa_rdata),
    "nodata-no-soa": header(4, 0x8180) + question("www.example.org", AAAA),
    "servfail": header(5, 0x8182) + question("www.example.org", A),
    "aaaa-edns": header(6, 0x8180, an=1, ar=1) + question("v6.example.org", AAAA)
    + rr("", AAAA, 30, bytes(15) + b"\x01", True) + opt(),
    "txt-big": header(7, 0x8180, an=3) + question("t.example.org", TXT)
    + b"".join(rr("", TXT, 300, bytes([200]) + b"x" * 200, True) for _ in range(3)),
    "ttl-zero": header(8, 0x8180, an=1) + question("z.example.org", A)
    + rr("", A, 0, bytes([192, 0, 2, 9]), True),
}
for i, (label, packet) in enumerate(responses.items()):
    write("upstream_answer", label, bytes([(i * 53) & 0xFF, i * 9]) + packet)

# list_formats: selector byte (0 auto, 1 plain, 2 hosts, 3 adblock,
# 4 dnsmasq, 5 rpz) + the list text.
lists = {
    "plain": (1, "# our seed\nexample-casino.test\n*.wild.example\nVIỆTNAM.example\n\n10.0.0.1\nbad..name\n"),
    "hosts": (2, "127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example # two names\n:: v6.example\n0.0.0.0\n"),
    "adblock": (3, "[Adblock Plus 2.0]\n! comment\n||ads.example^\n@@||ok.ads.example^\n||x.example^$important\n||y.example^$denyallow=z.example\n##.banner\n/regex/\n"),
    "dnsmasq": (4, "address=/ads.example/0.0.0.0\nlocal=/tracker.example/\nserver=/a.example/b.example/\naddress=/#/\n"),
    "rpz": (5, "$TTL 300\n@ SOA localhost. root.localhost. 1 3600 600 86400 60\n  NS localhost.\nads.example CNAME .\n*.ads.example CNAME .\nok.example CNAME rpz-passthru.\nx.example A 10.0.0.1\n"),
    "auto": (0, "\ufeff# detect me\n||first.example^\n||second.example^\nthird.example\n"),
}
for label, (selector, text) in lists.items():
    write("list_formats", label, bytes([selector]) + text.encode())
