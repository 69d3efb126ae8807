#!/usr/bin/env python3
"""Do replay, ndpiReader and tshark extract the same names from the benchmark capture?

  names_agree.py --tshark FIELDS --inspector DECISIONS [--ndpi CSV]

FIELDS: tshark -T fields -e ip.src -e ipv6.src -e tcp.srcport
        -e tls.handshake.extensions_server_name -e http.host (one line per ClientHello or
        request). DECISIONS: replay's JSON lines. CSV: ndpiReader -C. Flows are keyed by
        client address and port (unique in the generated capture). tshark is the oracle.
Prints one JSON object: names each tool found, how many equal tshark's for the same flow,
the inspector's decisions by verdict and reason, and a few disagreements to look at.
"""
import argparse
import collections
import csv
import ipaddress
import json


def key(addr, port):
    try:
        return (ipaddress.ip_address(addr).compressed, int(port))
    except ValueError:  # a tool that prints an address wrongly: it matches nothing
        return (addr, port)


def tshark_names(path):
    names = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        f = line.rstrip("\n").split("\t")
        if len(f) < 5:
            continue
        addr = f[0] or f[1]
        name = f[3] or f[4]
        if addr and f[2] and name:
            names[key(addr, f[2])] = name.lower()
    return names


def compare(oracle, other):
    same = sum(1 for k, n in other.items() if oracle.get(k) == n)
    differ = [{"flow": f"{k[0]}:{k[1]}", "tshark": oracle.get(k), "tool": n}
              for k, n in other.items() if oracle.get(k) != n][:5]
    missing = [f"{k[0]}:{k[1]}" for k in oracle if k not in other][:5]
    return {"names": len(other), "equal_to_tshark": same,
            "missing_vs_tshark": sum(1 for k in oracle if k not in other),
            "examples_differ": differ, "examples_missing": missing}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tshark", required=True)
    ap.add_argument("--inspector", required=True)
    ap.add_argument("--ndpi")
    a = ap.parse_args()
    oracle = tshark_names(a.tshark)

    insp, reasons = {}, collections.Counter()
    for line in open(a.inspector):
        d = json.loads(line)
        if d.get("event") != "decision":
            continue
        reasons[f'{d["verdict"]}:{d["reason"]}'] += 1
        if d.get("host"):
            insp[key(d["src"], d["sport"])] = d["host"]
    out = {"tshark_names": len(oracle), "inspector": compare(oracle, insp),
           "inspector_decisions": dict(sorted(reasons.items()))}

    if a.ndpi:
        ndpi = {}
        with open(a.ndpi, newline="") as f:
            rows = csv.reader(f)
            head = next(rows)
            col = {name.lstrip("#"): i for i, name in enumerate(head)}
            for r in rows:
                n = r[col["server_name_sni"]] if len(r) > col["server_name_sni"] else ""
                if n:
                    ndpi[key(r[col["src_ip"]], r[col["src_port"]])] = n.lower()
        out["ndpi"] = compare(oracle, ndpi)
    print(json.dumps(out, indent=1))


main()
