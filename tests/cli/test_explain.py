#!/usr/bin/env python3
"""explain and diff against replay, on every capture of tests/pcaps.

explain: for every TCP flow replay decides in a capture with expectations, explain asked
with the flow's facts (source, name, port, destination, l7) and the capture's own replay
options must give replay's verdict, reason, policy and rule, whenever the policy decided
the flow (an allow; a name, address, port or workload deny). Flows whose destination
check decided them (sni_ip_mismatch, dns_unresolved, ...: the capture's DNS answers are
not explain's) must be allowed by name once the check is off, as the policy did. Flows
replay denied for their bytes (a malformed hello, an evasion, a bound) are denied for
what their bytes were, which a flow asked by its facts does not have: counted, and
explain must still answer. Then the nearest entries of a few denies, and diff: a log
judged by the rules it came from changes nothing; with an entry removed and one added,
exactly the flows they decide change.
Usage: test_explain.py --bin build/egress-inspector. Ends with 'N passed, N failed'."""
import argparse, collections, json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.join(os.path.dirname(HERE), "pcaps")
ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
BIN = ap.parse_args().bin
results = []

POLICY = {"allowed_name", "allowed_address", "name_not_allowed", "port_not_inspected", "workload_unknown"}
BINDING = {"sni_ip_mismatch", "host_ip_mismatch", "dns_unresolved", "dns_failed", "dns_timeout"}


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))


def options(expect):
    with open(expect) as f:
        for line in f:
            if line.startswith("# options:"):
                return line.split(":", 1)[1].replace("{dir}", os.path.dirname(expect)).split()
    return ["--dest-check", "off"]


def without_dest_check(opts):
    out = []
    for i, o in enumerate(opts):
        if o == "--dest-check" or (i > 0 and opts[i - 1] == "--dest-check"):
            continue
        out.append(o)
    return out


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


def explain(rules, opts, d, dest_check=None):
    args = ["explain", "--rules", rules, "--source", d["src"], "--port", str(d["dport"]), "--dest", d["dst"]]
    host = d.get("host") or ""
    if host and d["l7"] in ("tls", "http", "socks", "quic") and all(c.isalnum() or c in ".-_" for c in host):
        args += ["--name", d["host"], "--l7", d["l7"]]
        if d.get("target_port"):  # through a proxy: the port its CONNECT or SOCKS request named
            args += ["--target-port", str(d["target_port"])]
    args += opts
    if dest_check:
        args += ["--dest-check", dest_check]
    r = run(*args)
    return json.loads(r.stdout) if r.returncode in (0, 1) and r.stdout.startswith("{") else {"error": r.stderr + r.stdout}


counts = collections.Counter()
disagree = []
for root, _, files in sorted(os.walk(PCAPS)):
    for name in sorted(files):
        if not name.endswith(".expect"):
            continue
        expect = os.path.join(root, name)
        pcap = next((expect[:-7] + e for e in (".pcap", ".pcapng") if os.path.exists(expect[:-7] + e)), None)
        if pcap is None:
            continue
        opts = options(expect)
        rules = os.path.join(PCAPS, "test.rules")
        if "--rules" in opts:  # the capture's own rules
            i = opts.index("--rules")
            rules = opts[i + 1]
            opts = opts[:i] + opts[i + 2:]
        out = run("replay", "--rules", rules, "--pcap", pcap, *opts)
        # With --dest-check strict, the capture's DNS answers bind names to addresses;
        # explain has no such answers, so it is asked what the policy says (check off).
        strict = "strict" in opts
        for d in map(json.loads, out.stdout.splitlines()):
            quic = d.get("proto") == "udp" and d["l7"] == "quic" and d.get("host")
            if (d.get("proto") != "tcp" and not quic) or d.get("revoked") or d.get("midstream"):
                counts["not a flow explain asks about"] += 1
                continue
            if quic:
                counts["QUIC"] += 1
            if d.get("target_port"):
                counts["through a proxy"] += 1
            if d["reason"] in POLICY:
                e = explain(rules, without_dest_check(opts) if strict else opts, d, "off" if strict else None)
                same = all(e.get(k) == d.get(k) for k in ("verdict", "reason", "policy", "rule", "rule_line"))
                counts["policy: agree" if same else "policy: DISAGREE"] += 1
                if not same:
                    disagree.append((os.path.relpath(pcap, PCAPS), d["src"], d.get("host"), d["dport"],
                                     (d["verdict"], d["reason"], d["policy"], d.get("rule")),
                                     (e.get("verdict"), e.get("reason"), e.get("policy"), e.get("rule"), e.get("error"))))
            elif d["reason"] in BINDING:
                e = explain(rules, without_dest_check(opts), d, dest_check="off")
                same = e.get("verdict") == "allow" and e.get("reason") == "allowed_name" and e.get("policy") == d["policy"]
                counts["binding: agree" if same else "binding: DISAGREE"] += 1
                if not same:
                    disagree.append((os.path.relpath(pcap, PCAPS), d["src"], d.get("host"), d["reason"], e))
            else:
                e = explain(rules, opts, d)
                # a message's problem, a tcp:// entry's learned address: what decided
                # these is in the capture, not in the flow's facts
                counts["bytes: answered" if "verdict" in e else "bytes: NO ANSWER"] += 1
                if "verdict" not in e:
                    disagree.append((os.path.relpath(pcap, PCAPS), d["src"], d.get("host"), d["reason"], e))
print("# " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
for x in [x for x in disagree if "pending" not in str(x)][:30]:
    print("#   ", x)
check("explain agrees with replay on every flow the policy decided", counts["policy: agree"] > 100
      and counts["policy: DISAGREE"] == 0, counts)
check("... proxy flows among them, asked with their target port", counts["through a proxy"] > 0, counts)
check("... and QUIC flows, asked as an Initial naming the server", counts["QUIC"] > 0, counts)
check("... and on every flow the destination check decided (the policy allowed the name)",
      counts["binding: agree"] > 0 and counts["binding: DISAGREE"] == 0, counts)
check("... and answers for the flows their bytes decided", counts["bytes: NO ANSWER"] == 0, counts)

# ---- nearest entries ----
ex = os.path.join(os.path.dirname(PCAPS), "..", "rules", "example.rules")
e = json.loads(run("explain", "--rules", ex, "--source", "10.244.1.10", "--name", "github.com", "--port", "8443").stdout)
check("a name allowed on other ports: other_port, with the entry and its line",
      e["reason"] == "port_not_inspected" and
      {"rule": "github.com", "why": "other_port", "policy": "ci-runners"}.items() <= e["nearest"][0].items(), e)
e = json.loads(run("explain", "--rules", ex, "--source", "10.244.1.10", "--name", "githubusercontent.com").stdout)
check("a wildcard's apex: wildcard_not_apex", any(n["why"] == "wildcard_not_apex" and
                                                   n["rule"] == "*.githubusercontent.com" for n in e["nearest"]), e)
e = json.loads(run("explain", "--rules", ex, "--source", "10.244.0.10", "--name", "github.com").stdout)
check("allowed only in a policy that does not govern the workload: other_policy",
      e["verdict"] == "deny" and any(n["why"] == "other_policy" and n["policy"] == "ci-runners" for n in e["nearest"]), e)
kube = os.path.join(PCAPS, "kube")
kopts = ["--pods", os.path.join(kube, "pods.json"), "--namespaces", os.path.join(kube, "namespaces.json")]
e = json.loads(run("explain", "--rules", os.path.join(kube, "kube.rules"), "--source", "10.244.1.10",
                   "--name", "telemetry.example", *kopts).stdout)
check("a pod's explanation names the pod and the policy of the union that allowed",
      e["verdict"] == "allow" and e["policy"] == "prod-all" and e["pod"] == "api-1", e)
e = json.loads(run("explain", "--rules", os.path.join(kube, "cnp.yaml"), "--source", "10.244.1.10",
                   "--name", "api.stripe.example", *kopts).stdout)
check("ClusterNetworkPolicy rules are named POLICY/RULE", e["verdict"] == "allow" and e["rule"] == "payments/stripe", e)
r = run("explain", "--rules", ex, "--source", "10.244.0.10")
check("a flow that names nothing on a port whose names are read: pending, not a guess",
      r.returncode == 1 and '"pending"' in r.stdout, r.stdout + r.stderr)
r = run("explain", "--rules", ex, "--source", "not-an-ip", "--name", "x.example")
check("a bad address: a clear error", r.returncode == 2 and "--source" in r.stderr, r.stderr)

# ---- diff ----
with tempfile.TemporaryDirectory() as tmp:
    log = os.path.join(tmp, "log")
    with open(log, "w") as f:
        f.write(run("replay", "--rules", ex, "--pcap", os.path.join(PCAPS, "example.pcap"), "--mode", "monitor",
                    "--dest-check", "off").stdout)
        f.write('{"event":"start"}\nnot json\n')
    r = run("diff", "--from", log, ex, ex)
    check("diff of the rules with themselves: no flow changes", r.returncode == 0 and r.stdout == ""
          and "0 change verdict" in r.stderr, r.stdout + r.stderr)
    new = os.path.join(tmp, "new.rules")
    text = open(ex).read()
    assert "allow api.github.com\n" in text
    with open(new, "w") as f:
        f.write(text.replace("allow api.github.com\n", "", 1) + "allow pastebin.example\n")
    r = run("diff", "--from", log, ex, new)
    changes = [json.loads(l) for l in r.stdout.splitlines()]
    got = sorted((c["src"], c["host"], c["old"]["verdict"], c["new"]["verdict"]) for c in changes)
    check("diff: the flows the removed and the added entry decide, and only those",
          r.returncode == 0 and ("10.244.0.10", "api.github.com", "allow", "deny") in got
          and all((c["host"] == "api.github.com" and c["new"]["verdict"] == "deny") or
                  (c["host"] == "pastebin.example" and c["new"]["verdict"] == "allow") for c in changes), got)
    check("... each with the rule that allowed it before", all(c["old"]["rule"] for c in changes
                                                               if c["old"]["verdict"] == "allow"), changes)

print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
