#!/usr/bin/env python3
"""tshark as an oracle: the name egress-inspector extracts from the first ClientHello or
HTTP request of every flow in tests/pcaps must be the one tshark extracts.

Captures whose .expect says '# oracle: skip' are left out: they hold deliberately
ambiguous messages (two names, lying lengths) on which a fail-closed reader and a
best-effort dissector are meant to differ; their expectations are checked by
check_pcaps.py instead.
Usage: tshark_oracle.py --bin build/egress-inspector [DIR]. Ends with 'N passed, N failed'.
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIELDS = ["frame.number", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
          "tcp.dstport", "tls.handshake.type", "tls.handshake.extensions_server_name",
          "http.request", "http.host", "udp.srcport", "udp.dstport"]  # udp: QUIC Initials


def norm(name, kind):
    if name in (None, "", "-"):
        return None
    name = name.split(",")[0].strip().lower()
    if kind == "http" and not name.startswith("[") and name.count(":") == 1:
        name = name.split(":")[0]
    return name[:-1] if name.endswith(".") else name


def tshark_names(pcap):
    r = subprocess.run(["tshark", "-r", pcap, "-o", "tcp.desegment_tcp_streams:TRUE",
                        "-Y", "tls.handshake.type == 1 || http.request", "-T", "fields",
                        "-E", "separator=\t", "-E", "occurrence=f"] +
                       sum((["-e", f] for f in FIELDS), []),
                       capture_output=True, text=True, timeout=120)
    flows = {}
    for line in r.stdout.splitlines():
        p = (line.split("\t") + [""] * len(FIELDS))[:len(FIELDS)]
        _, s4, s6, sp, d4, d6, dp, hs, sni, req, host, usp, udp = p
        key = (s4 or s6, sp or usp, d4 or d6, dp or udp)
        kind = "tls" if hs else "http"
        flows.setdefault(key, norm(sni if kind == "tls" else host, kind))
    return flows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rules", default=os.path.join(HERE, "pcaps", "test.rules"))
    ap.add_argument("dir", nargs="?", default=os.path.join(HERE, "pcaps"))
    a = ap.parse_args()
    passed = failed = skipped = 0
    for root, _, files in sorted(os.walk(a.dir)):
        for name in sorted(files):
            if not name.endswith((".pcap", ".pcapng")):
                continue
            pcap = os.path.join(root, name)
            expect = pcap.rsplit(".", 1)[0] + ".expect"
            if os.path.exists(expect) and "# oracle: skip" in open(expect).read():
                skipped += 1
                continue
            want = tshark_names(pcap)
            r = subprocess.run([a.bin, "replay", "--rules", a.rules, "--pcap", pcap, "--ports", "any"],
                               capture_output=True, text=True, timeout=120)
            got = {}
            for line in r.stdout.splitlines():
                d = json.loads(line)
                got[(d["src"], str(d["sport"]), d["dst"], str(d["dport"]))] = d["host"]
            bad = []
            for key, name in want.items():
                if key not in got:
                    bad.append(f"{' '.join(key)}: tshark {name!r}, no decision")
                elif norm(got[key], "tls") != name:
                    bad.append(f"{' '.join(key)}: tshark {name!r}, egress-inspector {got[key]!r}")
            rel = os.path.relpath(pcap, a.dir)
            if bad or not want:
                failed += 1
                print(f"FAIL {rel}: " + ("; ".join(bad[:5]) if bad else "tshark found no message"))
            else:
                passed += 1
                print(f"ok   {rel} ({len(want)} messages)")
    print(f"oracle: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
