#!/usr/bin/env python3
"""egress-inspector suggest: decision lines in, an allowlist out.

1. The round trip on every capture under tests/pcaps with an .expect whose decisions
   name a host: replay in monitor mode with the capture's options (read as
   tests/check_pcaps.py reads them), suggest --rules THE-RULES, check-rules the
   suggestion, replay again with it: no name_not_allowed is left, nor any deny by
   address. A ClusterNetworkPolicy --rules is refused (not carried over).
2. The same with --format portarium on a few captures (what Portarium cannot say,
   port 80 names and address entries, must be reported on stderr).
3. Hand-written decision lines: wildcards (3 siblings, not 2, never on a public suffix),
   --min-count, aggregated counts, CloudEvents, fail-closed reasons only as comments,
   garbage skipped and counted, address entries, ports other than 443/80.

Usage: test_suggest.py --bin build/egress-inspector. Ends with 'N passed, N failed'."""
import argparse, glob, json, os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from check_pcaps import read_expect, read_options  # noqa: E402  (the same options, the same way)

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
BIN = ap.parse_args().bin
PCAPS = os.path.join(ROOT, "tests", "pcaps")
TEST_RULES = os.path.join(PCAPS, "test.rules")
BY_ADDRESS = {"port_not_inspected", "udp_not_inspected", "quic_not_inspected", "icmp_not_inspected",
              "proto_not_inspected", "no_hostname", "not_tls_or_http"}
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {str(detail)[:1500]}"))


def run(*args, stdin=None):
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=120)


def decisions(stdout):
    return [d for d in map(json.loads, stdout.splitlines()) if d.get("event") == "decision"]


def split_rules(options):
    """The capture's own --rules (if any) and the rest of its options."""
    rules, rest, i = TEST_RULES, [], 0
    while i < len(options):
        if options[i] == "--rules" and i + 1 < len(options):
            rules = options[i + 1]
            i += 2
            continue
        rest.append(options[i])
        i += 1
    return rules, rest


def captures():
    for exp in sorted(glob.glob(os.path.join(PCAPS, "**", "*.expect"), recursive=True)):
        if not any(r["host"] not in ("-", "*") for r in read_expect(exp)):
            continue
        pcap = next((exp[:-7] + e for e in (".pcap", ".pcapng") if os.path.exists(exp[:-7] + e)), None)
        if pcap is not None:
            yield exp, pcap


def replay(rules, pcap, options):
    r = run("replay", "--rules", rules, "--pcap", pcap, "--mode", "monitor", *options)
    return (decisions(r.stdout) if r.returncode == 0 else None), r


def left_over(lines):
    return [(d["reason"], d["host"], d["dst"], d["dport"]) for d in lines
            if d["verdict"] == "deny" and (d["reason"] == "name_not_allowed" or d["reason"] in BY_ADDRESS)]


def round_trip(tmp, exp, pcap):
    rel = os.path.relpath(exp, PCAPS)
    rules, options = split_rules(read_options(exp))
    before, r = replay(rules, pcap, options)
    if before is None:
        return check(f"round trip {rel}: first replay", False, r.stderr)
    log = "\n".join(json.dumps(d) for d in before) + "\n"
    r = run("suggest", "--rules", rules, stdin=log)
    if rules.endswith(".yaml"):  # ClusterNetworkPolicy: refused, with a reason
        check(f"round trip {rel}: a ClusterNetworkPolicy --rules is refused",
              r.returncode == 2 and "ClusterNetworkPolicy" in r.stderr and r.stdout == "", r.stderr)
        r = run("suggest", stdin=log)
        wanted = {d["host"] for d in before if d["reason"] == "name_not_allowed"}
        check(f"round trip {rel}: without --rules, every name_not_allowed host is suggested",
              r.returncode == 0 and all(re.search(rf"^allow {re.escape(h)}\b", r.stdout, re.M) for h in wanted),
              r.stdout + r.stderr)
        return
    if r.returncode != 0:
        return check(f"round trip {rel}: suggest", False, r.stderr)
    path = os.path.join(tmp, rel.replace("/", "_") + ".rules")
    with open(path, "w") as f:
        f.write(r.stdout)
    c = run("check-rules", path)
    if c.returncode != 0:
        return check(f"round trip {rel}: check-rules of the suggestion", False, c.stderr + r.stdout)
    after, r2 = replay(path, pcap, options)
    if after is None:
        return check(f"round trip {rel}: second replay", False, r2.stderr)
    check(f"round trip {rel} ({len(before)} flows)", not left_over(after), left_over(after))


def portarium_round_trip(tmp, rel):
    exp = os.path.join(PCAPS, rel)
    pcap = exp[:-7] + ".pcap"
    rules, options = split_rules(read_options(exp))
    before, r = replay(rules, pcap, options)
    if before is None:
        return check(f"portarium {rel}: first replay", False, r.stderr)
    log = "\n".join(json.dumps(d) for d in before) + "\n"
    r = run("suggest", "--rules", rules, "--format", "portarium", stdin=log)
    path = os.path.join(tmp, rel.replace("/", "_") + ".json")
    with open(path, "w") as f:
        f.write(r.stdout)
    c = run("check-rules", path)
    if r.returncode != 0 or c.returncode != 0:
        return check(f"portarium {rel}: suggest and check-rules", False, r.stderr + c.stderr + r.stdout)
    docs = json.loads(r.stdout)
    ok = all(d["kind"] == "MachineExecutionPolicy" and d["spec"]["egressAllowlist"] and
             all(u.startswith("https://") for u in d["spec"]["egressAllowlist"]) for d in docs)
    after, r2 = replay(path, pcap, options)
    if after is None:
        return check(f"portarium {rel}: second replay", False, r2.stderr)
    # a name still denied must be one that Portarium cannot say, and that stderr names: an
    # entry not expressible (port 80, http://), a bare name narrowed to 443, or a workload
    # that Portarium gives to one policy only (a pod several label policies govern)
    def reported(d):
        names = [d["host"]] + ["*." + d["host"].split(".", i)[-1] for i in range(1, d["host"].count(".") + 1)]
        return any(re.search(rf"(^|[ /:]){re.escape(n)}([ :]|$)", line) for n in names
                   for line in r.stderr.splitlines() if "not expressible" in line or "443 only" in line) \
            or f"workload {d['src']} is a source of policy" in r.stderr
    unreported = [d["host"] for d in after if d["reason"] == "name_not_allowed" and not reported(d)]
    check(f"portarium round trip {rel} ({len(docs)} documents)", ok and not unreported, (unreported, r.stderr))


# ---- 1 and 2: the round trips ----

with tempfile.TemporaryDirectory() as tmp:
    n = 0
    for exp, pcap in captures():
        round_trip(tmp, exp, pcap)
        n += 1
    check(f"the round trip covered the captures that name a host ({n})", n >= 30, n)
    for rel in ("crafted/deny_name.expect", "crafted/ok_http.expect", "quic/quic_denied.expect",
                "kube/workloads.expect", "dns/bound.expect", "real/curl_http.expect"):
        if os.path.exists(os.path.join(PCAPS, rel)):
            portarium_round_trip(tmp, rel)

# ---- 3: hand-written lines ----


def line(host=None, reason="name_not_allowed", verdict=None, policy="default", dport=443, dst="203.0.113.7",
         proto="tcp", rule=None, src="10.244.0.10", **extra):
    verdict = verdict or ("allow" if reason.startswith("allowed_") else "deny")
    d = {"ts": "2025-12-01T00:00:00.000000Z", "event": "decision", "verdict": verdict, "reason": reason,
         "policy": policy, "rule": rule, "mode": "monitor", "enforced": False, "src": src, "sport": 40000,
         "dst": dst, "dport": dport, "proto": proto, "l7": "tls" if host else "none", "host": host}
    d.update(extra)
    return json.dumps(d)


def suggest(lines, *args):
    r = run("suggest", *args, stdin="\n".join(lines) + "\n")
    return r


def allows(text, policy="default"):
    """The allow entries of one policy of a rules text, with their `seen` counts."""
    cur, out = "default", {}
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) == 2 and words[0] == "policy":
            cur = words[1]
        elif len(words) == 2 and words[0] == "allow" and cur == policy:
            m = re.search(r"# seen (\d+)", raw)
            out[words[1]] = int(m.group(1)) if m else None
    return out


def valid(text):
    with tempfile.NamedTemporaryFile("w", suffix=".rules", delete=False) as f:
        f.write(text)
    try:
        return run("check-rules", f.name).returncode == 0
    finally:
        os.unlink(f.name)


r = suggest([line("a.example.com"), line("b.example.com"), line("c.example.com"), line("x.y.example.com"),
             line("a.other.org"), line("b.other.org")])
a = allows(r.stdout)
check("3 siblings become a wildcard (the deeper name folds in), 2 stay exact",
      r.returncode == 0 and a == {"*.example.com": 4, "a.other.org": 1, "b.other.org": 1}, r.stdout)
check("the wildcard's comment lists what it replaces",
      re.search(r"^# \*\.example\.com replaces: a\.example\.com b\.example\.com c\.example\.com x\.y\.example\.com$",
                r.stdout, re.M), r.stdout)
check("the suggestion is valid rules", valid(r.stdout), r.stdout)

r = suggest([line(f"{c}.github.io") for c in "abcd"] + [line(f"{c}.x.co.uk") for c in "abc"] +
            [line(f"{c}.co.uk") for c in "abc"] + [line(f"{c}.com") for c in "abc"] +
            [line(f"{c}.s3.amazonaws.com") for c in "abc"])
a = allows(r.stdout)
check("never a wildcard on a public suffix: *.github.io, *.co.uk, *.com are not made; *.x.co.uk is",
      "*.x.co.uk" in a and not any(e in a for e in ("*.github.io", "*.co.uk", "*.com", "*.uk"))
      and all(f"{c}.github.io" in a for c in "abcd") and all(f"{c}.co.uk" in a for c in "abc")
      and all(f"{c}.com" in a for c in "abc"), a)
check("nor on a private public suffix (s3.amazonaws.com)", "*.s3.amazonaws.com" not in a and
      "a.s3.amazonaws.com" in a, a)
r = suggest([line(f"{c}.example.com") for c in "abc"], "--min-siblings", "4")
check("--min-siblings 4: three names stay exact", len(allows(r.stdout)) == 3, r.stdout)
r = suggest([line(f"{c}.example.com") for c in "abc"], "--min-siblings", "0")
check("--min-siblings 0: names stay exact", len(allows(r.stdout)) == 3, r.stdout)

r = suggest([line("often.example")] * 3 + [line("once.example"), line("twice.example"), line("twice.example")],
            "--min-count", "2")
a = allows(r.stdout)
check("--min-count 2 keeps what was seen twice or more",
      a == {"often.example": 3, "twice.example": 2} and
      "not suggested (seen fewer than --min-count 2 times): 1 once.example" in r.stdout, r.stdout)

agg = json.dumps({"ts": "2025-12-01T00:00:10.000000Z", "event": "decisions_aggregated", "verdict": "deny",
                  "reason": "name_not_allowed", "count": 41, "interval_s": 10, "src": "10.244.7.10",
                  "dport": 443, "host": "agg.example"})
agg_addr = json.dumps({"ts": "2025-12-01T00:00:10.000000Z", "event": "decisions_aggregated", "verdict": "deny",
                       "reason": "udp_not_inspected", "count": 9, "interval_s": 10, "src": "10.244.7.10",
                       "dst": "198.51.100.53", "proto": "udp", "dport": 5353, "host": None})
r = suggest([line("agg.example", policy="payments", src="10.244.7.10"), agg,
             line(None, reason="udp_not_inspected", policy="payments", src="10.244.7.10", dst="198.51.100.53",
                  proto="udp", dport=5353), agg_addr], "--min-count", "10")
a = allows(r.stdout, "payments")
check("aggregated lines add their count to the policy of their kind's full line",
      a == {"agg.example": 42, "198.51.100.53/32:5353": 10} and allows(r.stdout) == {}, r.stdout)
r = suggest([agg, json.dumps({"event": "decisions_aggregated", "verdict": "deny", "reason": "many_kinds",
                              "count": 7})])
check("an aggregate with nothing to name its policy is not suggested, and said so",
      allows(r.stdout) == {} and "# note: 41 aggregated denies" in r.stderr and "many_kinds" in r.stderr,
      r.stdout + r.stderr)


def cloudevent(host, port, reason=None, policy="default", addr="203.0.113.7", count=None, rule=None):
    data = {"outcome": "allowed", "policy": policy, "rule": rule, "enforcementMode": "monitor",
            "destination": f"{host or addr}:{port}", "destinationAddress": addr, "protocol": "tls",
            "latencyMs": 0.1, "workloadAddress": "10.244.0.10", "host": host}
    if reason:
        data["denyReason"] = reason
    if count:
        data.update(aggregated=True, count=count, policy=None)
    return json.dumps({"specversion": "1.0", "type": "io.portarium.egress.attempt", "source": "node-1",
                       "id": "node-1-1", "time": "2025-12-01T00:00:00.000000Z",
                       "datacontenttype": "application/json", "data": data})


r = suggest([cloudevent("ce.example", 443, "name_not_allowed"), cloudevent("ce.example", 443, "name_not_allowed", count=4),
             cloudevent("alt.example", 8443, "name_not_allowed"), cloudevent("ok.example", 443, rule="*.example"),
             cloudevent(None, 22, rule="203.0.113.0/24:22"),
             cloudevent(None, 5432, "port_not_inspected", addr="2001:db8::7"),
             cloudevent("evil.example", 443, "tls_duplicate_extension"),
             json.dumps({"specversion": "1.0", "type": "io.portarium.egress.other", "data": {}})])
a = allows(r.stdout)
check("CloudEvents: names, ports, address entries, rules kept; aggregated counts added",
      a == {"ce.example": 5, "alt.example:8443": 1, "ok.example": 1, "203.0.113.0/24:22": 1,
            "[2001:db8::7/128]:5432": 1} and valid(r.stdout), r.stdout + r.stderr)
check("CloudEvents: a fail-closed deny is a comment, other types are skipped",
      "# not suggested (denied fail-closed): 1 tls_duplicate_extension evil.example" in r.stdout and
      "read 7 decision lines, skipped 1 other lines" in r.stderr, r.stdout + r.stderr)

fail_closed = ["tls_duplicate_extension", "tls_malformed", "http_multiple_host", "sni_ip_mismatch",
               "host_ip_mismatch", "dns_unresolved", "dns_timeout", "tcp_overlap_conflict", "tcp_bad_ack",
               "quic_malformed", "reassembly_limit", "held_limit", "incomplete", "shutdown", "midstream",
               "workload_unknown", "invalid_name", "multiple_names", "no_name_within_limit",
               "dns_resolver_not_named", "some_future_reason"]
r = suggest([line("evil.example", reason=x) for x in fail_closed] + [line("evil.example", reason="tls_malformed")] +
            [line(None, reason="tcp_bad_ack", dst="203.0.113.9", dport=8443)])
check("what was denied fail-closed is never an entry", allows(r.stdout) == {}, r.stdout)
check("... but a comment with its count, reason and name or destination",
      all(f"# not suggested (denied fail-closed): {2 if x == 'tls_malformed' else 1} {x} evil.example" in r.stdout
          for x in fail_closed) and "1 tcp_bad_ack 203.0.113.9:8443" in r.stdout and valid(r.stdout), r.stdout)

garbage = ["not json", "", "{", "[1,2]", '{"event":"start","version":"0.1.0"}', '{"event":"reload","ok":true}',
           '{"event":"mode","mode":"enforce"}', '{"event":"shutdown"}', '{"event":"warning","message":"x"}',
           '{"event":"replay_summary","frames":3}', '{"event":"decision"}', '{"event":"decision","verdict":"maybe","reason":"x"}',
           line("trail.example") + " trailing", "\x00\x01\x02", "x" * (1 << 21), "entrypoint: starting"]
r = suggest(garbage + [line("good.example")])
check("garbage and other events are skipped and counted, a long line too",
      r.returncode == 0 and allows(r.stdout) == {"good.example": 1} and
      "# read 1 decision lines, skipped 16 other lines (1 longer than 1 MiB)" in r.stderr, r.stderr)
r = suggest([line("Bad.Example"), line("bad..example"), line("1.2.3.4"), line("evil.example\nallow x")])
check("a host that is not a valid lowercase hostname is not suggested, and cannot break a line",
      allows(r.stdout) == {} and r.stdout.count("# not suggested (not a valid hostname)") == 4 and
      valid(r.stdout) and "\nallow x" not in r.stdout, r.stdout)

r = suggest([line(None, reason="no_hostname", dst="203.0.113.7", dport=443),
             line(None, reason="not_tls_or_http", dst="2001:db8::7", dport=80),
             line(None, reason="port_not_inspected", dst="203.0.113.8", dport=5432),
             line(None, reason="quic_not_inspected", dst="203.0.113.8", dport=443, proto="udp"),
             line(None, reason="icmp_not_inspected", dst="203.0.113.9", dport=0, proto="icmp"),
             line(None, reason="icmp_not_inspected", dst="2001:db8::9", dport=0, proto="icmpv6"),
             line(None, reason="proto_not_inspected", dst="203.0.113.10", dport=0, proto="gre"),
             line(None, reason="allowed_address", rule="198.51.100.0/24:22", dst="198.51.100.4", dport=22),
             line(None, reason="allowed_tcp_name", rule="tcp://db.example:5432", dst="198.51.100.5", dport=5432)])
a = allows(r.stdout)
check("address entries for nameless denies (no port for ICMP and other protocols); rules kept",
      a == {"203.0.113.7/32:443": 1, "[2001:db8::7/128]:80": 1, "203.0.113.8/32:5432": 1,
            "203.0.113.8/32:443": 1, "203.0.113.9/32": 1, "2001:db8::9/128": 1, "203.0.113.10/32": 1,
            "198.51.100.0/24:22": 1, "tcp://db.example:5432": 1} and valid(r.stdout), r.stdout)
check("an address entry for flows that named nothing says it allows any name",
      re.search(r"^allow 203\.0\.113\.7/32:443  # seen 1; the flows named nothing", r.stdout, re.M), r.stdout)

r = suggest([line("web.example", dport=443), line("web.example", dport=80), line("plain.example", dport=80),
             line("alt.example", dport=8443), line("alt.example", dport=8443),
             line("ok.example", reason="allowed_name", rule="*.example:9000", dport=9000),
             line("web8080.example", dport=8080, l7="http")])
a = allows(r.stdout)
check("ports 443 and 80 give the bare name, others name:port",
      a == {"web.example": 2, "plain.example": 1, "alt.example:8443": 2, "ok.example:9000": 1,
            "web8080.example:8080": 1}, r.stdout)
# Through a proxy (CONNECT, SOCKS) a name is judged by its target's port, which decision
# lines give as target_port (CloudEvents: the destination's port, with proxyPort).
r = suggest([line("denied.example", dst="203.0.113.20", dport=3128, l7="http", target_port=8443),
             line("sockname.example", dst="203.0.113.30", dport=1080, l7="socks", target_port=443)])
a = allows(r.stdout)
check("through a proxy: the target_port the line names (json)",
      a == {"denied.example:8443": 1, "sockname.example": 1} and "not suggested" not in r.stdout
      and valid(r.stdout), r.stdout)
ce = {"specversion": "1.0", "type": "io.portarium.egress.attempt", "source": "t", "id": "1",
      "time": "2025-12-01T00:00:00Z", "data": {"outcome": "allowed", "denyReason": "name_not_allowed",
      "policy": "default", "destination": "sockname.example:8443", "destinationAddress": "203.0.113.30",
      "proxyPort": 1080, "protocol": "socks", "workloadAddress": "10.244.0.10", "host": "sockname.example"}}
r = suggest([json.dumps(ce)])
check("... and in CloudEvents (destination's port, proxyPort)", allows(r.stdout) == {"sockname.example:8443": 1},
      r.stdout + r.stderr)
# Logs written before target_port: an allow through the same proxy tells it by its rule's port.
proxy = dict(dst="203.0.113.20", dport=3128, l7="http")
r = suggest([line("allowed.example", reason="allowed_name", rule="allowed.example", **proxy),
             line("denied.example", **proxy),
             line("sockname.example", dst="203.0.113.30", dport=1080, l7="socks")])
a = allows(r.stdout)
check("a CONNECT through a proxy: the port its allows were judged by (allowed.example: 443)",
      a == {"allowed.example": 1, "denied.example": 1} and "through 203.0.113.20:3128" in r.stdout
      and "# not suggested (SOCKS through 203.0.113.30 port 1080" in r.stdout and valid(r.stdout), r.stdout)
r = suggest([line("web.example", dport=443), line("plain.example", dport=80), line("alt.example", dport=8443),
             line(None, reason="no_hostname", dst="203.0.113.7")], "--format", "portarium")
docs = json.loads(r.stdout) if r.returncode == 0 else []
check("portarium: https:// names (with their port), port 80 and addresses reported on stderr",
      docs and docs[0]["spec"]["egressAllowlist"] == ["https://alt.example:8443", "https://web.example"]
      and "plain.example is not expressible" in r.stderr and "203.0.113.7/32:443 is not expressible" in r.stderr,
      r.stdout + r.stderr)

# --rules: headers, selectors and existing lines carried over; a new policy at the end
with tempfile.TemporaryDirectory() as tmp:
    base = os.path.join(tmp, "base.rules")
    with open(base, "w") as f:
        f.write("# site rules\nallow kept.example\n\npolicy payments   # the payments team\n"
                "source 10.244.7.0/24\nallow api.stripe.example\n# trailing comment\n\n"
                "policy runners\nnamespaces kubernetes.io/metadata.name=ci\npods app=runner\n")
    lines = [line("kept.example", reason="allowed_name", rule="kept.example"),
             line("new.example"), line("pay.example", policy="payments", src="10.244.7.10"),
             line("pypi.example", policy="runners", src="10.244.1.5"),
             line("other.example", policy="stranger", src="10.244.9.9")]
    r = suggest(lines, "--rules", base)
    out = r.stdout
    check("--rules: every line carried over, the new entries under their policies",
          r.returncode == 0 and valid(out) and allows(out) == {"kept.example": None, "new.example": 1}
          and allows(out, "payments") == {"api.stripe.example": None, "pay.example": 1}
          and allows(out, "runners") == {"pypi.example": 1} and allows(out, "stranger") == {"other.example": 1}
          and "namespaces kubernetes.io/metadata.name=ci\npods app=runner\nallow pypi.example" in out
          and "allow api.stripe.example\nallow pay.example  # seen 1\n" in out
          and out.index("# trailing comment") > out.index("allow pay.example")
          and "stranger is in the decision lines but not in" in out
          and out.rindex("policy stranger") > out.rindex("policy runners"), out)
    r = suggest(lines, "--rules", base, "--format", "portarium")
    docs = {d["metadata"]["name"]: d["spec"] for d in json.loads(r.stdout)} if r.returncode == 0 else {}
    check("--rules --format portarium: sources from the file, else the workloads seen",
          docs.get("payments", {}).get("sources") == ["10.244.7.0/24"]
          and docs.get("runners", {}).get("sources") == ["10.244.1.5/32"]
          and docs.get("stranger", {}).get("sources") == ["10.244.9.9/32"]
          and "sources" not in docs.get("default", {"sources": 1})
          and "selects pods by labels" in r.stderr, r.stdout + r.stderr)
    pj = os.path.join(tmp, "base.json")
    with open(pj, "w") as f:
        json.dump([{"kind": "MachineExecutionPolicy", "metadata": {"name": "general"},
                    "spec": {"egressAllowlist": ["https://kept.example"]}},
                   {"kind": "MachineExecutionPolicy", "metadata": {"name": "payments"},
                    "spec": {"sources": ["10.244.7.0/24"], "egressAllowlist": ["https://api.stripe.example"]}}], f)
    r = suggest(lines[:3], "--rules", pj, "--format", "portarium")
    docs = {d["metadata"]["name"]: d["spec"] for d in json.loads(r.stdout)} if r.returncode == 0 else {}
    check("a Portarium --rules is carried over (its default document keeps its name)",
          docs.get("general", {}).get("egressAllowlist") == ["https://kept.example", "https://new.example"]
          and docs.get("payments", {}).get("egressAllowlist") == ["https://api.stripe.example", "https://pay.example"],
          r.stdout + r.stderr)
    bad = os.path.join(tmp, "bad.rules")
    with open(bad, "w") as f:
        f.write("allow bad..example\n")
    r = suggest(lines, "--rules", bad)
    check("an invalid --rules is refused with the loader's errors (exit 2)",
          r.returncode == 2 and f"{bad}:1:" in r.stderr and r.stdout == "", r.stderr)

for args, what in ((["--format", "yaml"], "--format"), (["--min-count", "0"], "--min-count"),
                   (["--min-siblings", "1"], "--min-siblings"), (["--bogus"], "usage"),
                   (["--from", "/nonexistent/log"], "/nonexistent/log"), (["extra"], "unexpected")):
    r = run("suggest", *args, stdin="")
    check(f"usage error {' '.join(args)}: exit 2 with a message", r.returncode == 2 and what in r.stderr, r.stderr)
r = run("suggest", "--help")
check("--help prints the usage and the wildcard rule", r.returncode == 0 and "public suffix" in r.stdout, r.stdout)
r = run("suggest", "--from", "-", stdin="")
check("no input: an empty suggestion, still valid", r.returncode == 0 and valid(r.stdout) and
      "read 0 decision lines, skipped 0 other lines" in r.stderr, r.stderr)

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
