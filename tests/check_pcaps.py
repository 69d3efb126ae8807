#!/usr/bin/env python3
"""Replays every capture under tests/pcaps that has an .expect file and compares the
decisions with it (format: tests/pcaps/README.md). Each capture is replayed twice: in
enforce mode, where the lines must match the expectation exactly, and in monitor mode,
where the same verdicts and reasons must come out with "enforced": false.

A capture is replayed with --dest-check off (the parsing and evasion captures hold no DNS
answers), unless its .expect names its own replay arguments on a "# options: ..." line,
as the captures of tests/pcaps/dns do (--dest-check strict).

Usage: check_pcaps.py --bin build/egress-inspector [--rules tests/pcaps/test.rules] [DIR]
Ends with 'N passed, N failed' and exits non-zero on any failure.
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def read_options(path):
    with open(path) as f:
        for line in f:
            if line.startswith("# options:"):  # {dir}: the directory of the .expect
                return line.split(":", 1)[1].replace("{dir}", os.path.dirname(os.path.abspath(path))).split()
    return ["--dest-check", "off"]


def read_expect(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
            if not line:
                continue
            p = line.split()
            if len(p) != 8:
                raise SystemExit(f"{path}:{n}: expected 8 fields, got {len(p)}")
            rows.append(dict(src=p[0], sport=p[1], dst=p[2], dport=p[3], l7=p[4], host=p[5],
                             verdict=p[6], reason=p[7], line=n))
    return rows


def replay(binary, rules, pcap, mode, options):
    r = subprocess.run([binary, "replay", "--rules", rules, "--pcap", pcap, "--mode", mode] + options,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return None, f"replay exited {r.returncode}: {r.stderr.strip()[:300]}"
    lines = []
    for raw in r.stdout.splitlines():
        d = json.loads(raw)  # every line must be valid JSON
        if d.get("event") == "decision":
            lines.append(d)
    return lines, None


def compare(exp, got):
    # A flow has one decision, but for a plain HTTP connection, which has one per request
    # head: its expect lines name them in order.
    errors = []
    by_key = {}
    for d in got:
        key = (d["src"], str(d["sport"]), d["dst"], str(d["dport"]))
        by_key.setdefault(key, []).append(d)
    for e in exp:
        key = (e["src"], e["sport"], e["dst"], e["dport"])
        d = by_key[key].pop(0) if by_key.get(key) else None
        if d is None:
            errors.append(f"line {e['line']}: no decision for {' '.join(key)}")
            continue
        host = d["host"] if d["host"] is not None else "-"
        want = [("l7", e["l7"], d["l7"]), ("verdict", e["verdict"], d["verdict"])]
        if e["host"] != "*":
            want.append(("host", e["host"], host))
        if e["reason"] != "*":
            want.append(("reason", e["reason"], d["reason"]))
        for field, w, g in want:
            if w != g:
                errors.append(f"line {e['line']}: {' '.join(key)}: {field} {g!r}, expected {w!r}")
    for key, left in by_key.items():
        for d in left:
            errors.append(f"unexpected decision {' '.join(key)}: {d['verdict']} {d['reason']} host={d['host']}")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rules", default=os.path.join(HERE, "pcaps", "test.rules"))
    ap.add_argument("dir", nargs="?", default=os.path.join(HERE, "pcaps"))
    a = ap.parse_args()
    passed = failed = 0
    for root, _, files in sorted(os.walk(a.dir)):
        for name in sorted(files):
            if not name.endswith(".expect"):
                continue
            exp_path = os.path.join(root, name)
            pcap = None
            for ext in (".pcap", ".pcapng"):
                if os.path.exists(exp_path[:-7] + ext):
                    pcap = exp_path[:-7] + ext
            rel = os.path.relpath(exp_path, a.dir)
            if pcap is None:
                print(f"FAIL {rel}: no capture beside it"); failed += 1; continue
            exp = read_expect(exp_path)
            options = read_options(exp_path)
            errors = []
            enforce, err = replay(a.bin, a.rules, pcap, "enforce", options)
            if err:
                errors.append(err)
            else:
                errors += compare(exp, enforce)
                monitor, err = replay(a.bin, a.rules, pcap, "monitor", options)
                if err:
                    errors.append("monitor: " + err)
                else:
                    strip = lambda ds: sorted((d["src"], d["sport"], d["verdict"], d["reason"], d["host"] or "") for d in ds)
                    if strip(monitor) != strip(enforce):
                        errors.append("monitor mode decided differently from enforce mode")
                    if any(d["enforced"] or d["mode"] != "monitor" for d in monitor):
                        errors.append("monitor mode line with enforced=true")
                    if any(d["enforced"] != (d["verdict"] == "deny") for d in enforce):
                        errors.append("enforce mode: enforced must be true exactly for denies")
            if errors:
                failed += 1
                print(f"FAIL {rel}")
                for e in errors[:20]:
                    print("   ", e)
            else:
                passed += 1
                print(f"ok   {rel} ({len(exp)} flows)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
