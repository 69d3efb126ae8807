#!/usr/bin/env python3
"""The command line as an operator meets it: check-rules, replay errors, modes.
Usage: test_cli.py --bin build/egress-inspector. Ends with 'N passed, N failed'."""
import argparse, json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
BIN = ap.parse_args().bin
results = []


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


def check(name, cond, detail=""):
    results.append(cond)
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))


r = run("check-rules", os.path.join(ROOT, "rules", "example.rules"))
check("example rules are valid", r.returncode == 0 and "3 policies" in r.stdout, r.stdout + r.stderr)

with tempfile.TemporaryDirectory() as tmp:
    bad = os.path.join(tmp, "bad.rules")
    with open(bad, "w") as f:
        f.write("allow ok.example\nallow bad..example\nsource 10.0.0.0/8\npolicy p\n"
                "source 10.0.0.1/8\nallow api.example:99999\nfrobnicate x\nallow *.\n")
    r = run("check-rules", bad)
    want = [f"{bad}:{n}:" for n in (2, 3, 5, 6, 7, 8)]
    check("every error of a rules file is reported with its line",
          r.returncode == 1 and all(w in r.stderr for w in want) and "nothing applied" in r.stderr,
          r.stderr)
    r = run("replay", "--rules", bad, "--pcap", os.path.join(ROOT, "tests", "pcaps", "example.pcap"))
    check("replay refuses a broken rules file", r.returncode == 2 and r.stdout == "", r.stderr)

    garbage = os.path.join(tmp, "garbage.pcap")
    with open(garbage, "wb") as f:
        f.write(b"\xd4\xc3\xb2\xa1" + os.urandom(64))
    r = run("replay", "--rules", os.path.join(ROOT, "rules", "example.rules"), "--pcap", garbage)
    check("a malformed capture gives a clear error, no crash",
          r.returncode == 2 and "egress-inspector:" in r.stderr, r.stderr)
    with open(os.path.join(ROOT, "tests", "pcaps", "example.pcap"), "rb") as f:
        data = f.read()
    cut = os.path.join(tmp, "cut.pcap")
    with open(cut, "wb") as f:
        f.write(data[: len(data) // 2 + 7])
    r = run("replay", "--rules", os.path.join(ROOT, "rules", "example.rules"), "--pcap", cut)
    check("a capture cut mid-packet: decisions so far, then an error", r.returncode == 2 and
          len(r.stdout.splitlines()) >= 1 and "error after frame" in r.stderr, r.stderr)

with tempfile.TemporaryDirectory() as tmp:
    good = os.path.join(tmp, "policies.json")
    with open(good, "w") as f:
        json.dump([{"kind": "MachineExecutionPolicy", "metadata": {"name": "general"},
                    "spec": {"egressAllowlist": ["https://api.github.com"]}},
                   {"kind": "MachineExecutionPolicy", "metadata": {"name": "ci-runners"},
                    "spec": {"sources": ["10.244.1.0/24"],
                             "egressAllowlist": ["https://github.com", "https://*.githubusercontent.com/x"]}}], f)
    r = run("check-rules", good)
    check("Portarium policy JSON is read", r.returncode == 0 and "2 policies, 3 allow entries" in r.stdout,
          r.stdout + r.stderr)
    out = run("replay", "--policy-json", good, "--pcap", os.path.join(ROOT, "tests", "pcaps", "example.pcap")).stdout
    d = {}
    for x in map(json.loads, out.splitlines()):
        d.setdefault((x["src"], x["host"]), (x["verdict"], x["policy"]))
    check("its policies apply by source like a rules file's",
          d.get(("10.244.1.10", "raw.githubusercontent.com")) == ("allow", "ci-runners")
          and d.get(("10.244.0.10", "api.github.com")) == ("allow", "default")
          and d.get(("10.244.0.10", "github.com")) == ("deny", "default"), d)
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        json.dump({"metadata": {"name": "x"}, "spec": {"sources": ["10.0.0.1/8"],
                   "egressAllowlist": ["http://a.example", "https://bad..x"]}}, f)
    r = run("check-rules", bad)
    check("every error of a policy document is reported with its JSON path",
          r.returncode == 1 and all(p in r.stderr for p in
                                    ("$.egressAllowlist[0]: not an https:// URL", "$.sources[0]: host bits",
                                     "$.egressAllowlist[1]: bad name")), r.stderr)
    with open(bad, "w") as f:
        f.write('{"spec": ')
    r = run("check-rules", bad)
    check("truncated JSON is refused", r.returncode == 1 and "ends too early" in r.stderr, r.stderr)

r = run("replay", "--rules", os.path.join(ROOT, "rules", "example.rules"), "--pcap", "/nonexistent.pcap")
check("a missing capture is named in the error", r.returncode == 2 and "/nonexistent.pcap" in r.stderr, r.stderr)

args = ["--rules", os.path.join(ROOT, "rules", "example.rules"), "--pcap", os.path.join(ROOT, "tests", "pcaps", "example.pcap")]
enf = [json.loads(l) for l in run("replay", *args).stdout.splitlines()]
mon = [json.loads(l) for l in run("replay", *args, "--mode", "monitor").stdout.splitlines()]
check("monitor computes what enforce would and enforces nothing",
      [(d["verdict"], d["reason"]) for d in enf] == [(d["verdict"], d["reason"]) for d in mon]
      and any(d["verdict"] == "deny" for d in mon) and not any(d["enforced"] for d in mon)
      and all(d["mode"] == "monitor" for d in mon))
check("policies are chosen by source address",
      {d["policy"] for d in enf} == {"default", "ci-runners", "payments"})
# Per-policy mode: payments in monitor, the rest enforced; the daemon's monitor mode wins.
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(ROOT, "rules", "example.rules")) as f:
        text = f.read()
    staged = os.path.join(tmp, "staged.rules")
    with open(staged, "w") as f:
        f.write(text.replace("policy payments\n", "policy payments\nmode monitor\n"))
    assert "mode monitor" in open(staged).read()
    sargs = ["--rules", staged, "--pcap", os.path.join(ROOT, "tests", "pcaps", "example.pcap")]
    st = [json.loads(l) for l in run("replay", *sargs).stdout.splitlines()]
    check("mode monitor in a policy: its denies are logged, not enforced, with mode monitor",
          [(d["verdict"], d["reason"]) for d in st] == [(d["verdict"], d["reason"]) for d in enf]
          and all(not d["enforced"] and d["mode"] == "monitor" for d in st
                  if d["policy"] == "payments" and d["verdict"] == "deny")
          and any(d["policy"] == "payments" and d["verdict"] == "deny" for d in st)
          and all(d["enforced"] and d["mode"] == "enforce" for d in st
                  if d["policy"] != "payments" and d["verdict"] == "deny"), st)
    smon = [json.loads(l) for l in run("replay", *sargs, "--mode", "monitor").stdout.splitlines()]
    check("... and the daemon's monitor mode enforces nothing at all",
          not any(d["enforced"] for d in smon) and all(d["mode"] == "monitor" for d in smon))
    with open(staged, "w") as f:
        f.write("allow a.example\nmode audit\npolicy p\nmode monitor\nmode enforce\n")
    r = run("check-rules", staged)
    check("a bad or second mode line is an error with its line",
          r.returncode == 1 and f"{staged}:2: bad mode 'audit'" in r.stderr
          and f"{staged}:5: a second 'mode' line" in r.stderr, r.stderr)
    pj = os.path.join(tmp, "staged.json")
    with open(pj, "w") as f:
        json.dump([{"metadata": {"name": "general"}, "spec": {"egressAllowlist": ["https://api.github.com"]}},
                   {"metadata": {"name": "ci-runners"},
                    "spec": {"sources": ["10.244.1.0/24"], "enforcementMode": "monitor",
                             "egressAllowlist": ["https://github.com"]}}], f)
    pj_out = [json.loads(l) for l in run("replay", "--policy-json", pj, "--pcap",
                                          os.path.join(ROOT, "tests", "pcaps", "example.pcap")).stdout.splitlines()]
    check("Portarium's enforcementMode is the policy's mode",
          any(d["policy"] == "ci-runners" and d["verdict"] == "deny" and not d["enforced"] for d in pj_out)
          and any(d["policy"] == "default" and d["verdict"] == "deny" and d["enforced"] for d in pj_out), pj_out)
    with open(pj, "w") as f:
        json.dump({"metadata": {"name": "x"}, "spec": {"sources": ["10.0.0.0/8"], "enforcementMode": "audit",
                                                       "egressAllowlist": ["https://a.example"]}}, f)
    r = run("check-rules", pj)
    check("... and a bad one is refused with its path",
          r.returncode == 1 and "$.enforcementMode: enforcementMode must be" in r.stderr, r.stderr)

r = run("replay", *args, "--mode", "audit")
check("an unknown mode is refused", r.returncode == 2 and "--mode" in r.stderr, r.stderr)
r = run("frobnicate")
check("an unknown command prints the usage", r.returncode == 2 and "usage:" in r.stderr, r.stderr)

# --source reaches iptables-restore's input: only a prefix we wrote ourselves may get there
r = run("iptables", "--print", "--queue", "0", "--source", "10.244.0.0/16")
check("--source writes the prefix into the rules", r.returncode == 0 and " -s 10.244.0.0/16 " in r.stdout, r.stderr)
for bad in ["10.244.0.0/16\n-A INPUT -j ACCEPT", "10.244.0.0/16 -j ACCEPT", "10.244.0.1/16",
            "10.0.0.0/33", "10.0.0.0/", "not-an-address", "10.0.0.0/8\x00x"[:-2] + "/x"]:
    r = run("iptables", "--print", "--queue", "0", "--source", bad)
    check(f"--source {bad!r} is refused and nothing is printed",
          r.returncode == 2 and r.stdout == "" and "not a CIDR" in r.stderr, r.stdout + r.stderr)
r = run("iptables", "--print", "--queue", "0", "--source", "fd00:0:0::/8")
check("--source writes an IPv6 prefix in its canonical form", r.returncode == 0 and " -s fd00::/8 " in r.stdout, r.stderr)

# --dns-from: the named resolvers, by the conntrack entry's original destination (a DNAT'd
# service address works), the same CIDR grammar as --source
r = run("iptables", "--print", "--queue", "0", "--dns-from", "10.96.0.10", "--dns-from", "fd00:10:96::a")
dns = [l for l in r.stdout.splitlines() if l.startswith("-A EGRESS-INSPECTOR-DNS")]
check("--dns-from: questions and answers of the named resolvers only, by original destination",
      r.returncode == 0 and len(dns) == 8 and all("--ctorigdst " in l for l in dns)
      and sum("--ctorigdst 10.96.0.10/32 " in l for l in dns) == 4
      and sum("--ctorigdst fd00:10:96::a/128 " in l for l in dns) == 4, r.stdout + r.stderr)
check("answers are read only in a conntrack entry's reply direction",
      all("--ctdir REPLY" in l for l in dns if "--sport 53" in l), r.stdout)
r = run("iptables", "--print", "--queue", "0", "--dns-from", "10.96.0.10/8")
check("--dns-from with host bits is refused", r.returncode == 2 and r.stdout == "" and "not a CIDR" in r.stderr,
      r.stdout + r.stderr)
r = run("replay", *args, "--dns-from", "10.96.0.99", "--summary")  # the capture asks 10.96.0.10
check("replay --dns-from: answers from elsewhere are counted and unread",
      r.returncode == 0 and '"dns_unnamed":' in r.stderr and '"dns_unnamed":0' not in r.stderr, r.stderr[-400:])

# --ports and --coverage: one grammar for run, replay and iptables
for bad in ["", "0", "80,", "443:80", "65536", "80;443", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
            "1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16"]:
    r = run("iptables", "--print", "--queue", "0", "--ports", bad)
    r2 = run("replay", *args, "--ports", bad)
    check(f"--ports {bad!r} is refused by iptables and replay",
          r.returncode == 2 and r.stdout == "" and "--ports" in r.stderr and r2.returncode == 2,
          r.stdout + r.stderr + r2.stderr)
r = run("iptables", "--print", "--queue", "0", "--ports", "80,443,8000:8100")
check("--ports ranges reach multiport as written",
      "-m multiport --dports 80,443,8000:8100 " in r.stdout and "--sports 80,443,8000:8100 " in r.stdout,
      r.stdout + r.stderr)
r = run("iptables", "--print", "--queue", "0", "--ports", "any")
check("--ports any: every TCP port queued, no multiport", r.returncode == 0 and "multiport" not in r.stdout
      and "-p tcp -j NFQUEUE" in r.stdout, r.stdout + r.stderr)
r = run("iptables", "--print", "--queue", "0", "--dns-from", "10.96.0.10")
chain = [l for l in r.stdout.split("# egress-inspector node rules, IPv6")[0].splitlines()
         if l.startswith("-A EGRESS-INSPECTOR ")]
order = [i for i, l in enumerate(chain) if "--dports 80,443" in l] + \
        [i for i, l in enumerate(chain) if "--ctorigdst 10.96.0.10/32 -j RETURN" in l] + \
        [i for i, l in enumerate(chain) if l.endswith("--ctdir ORIGINAL -j NFQUEUE --queue-num 0")]
check("--coverage all: DNS to the named resolver leaves, then the rest the workload begins is queued",
      len(order) == 4 and order == sorted(order), "\n".join(chain))
check("... untracked non-TCP is dropped, denied UDP answered with port unreachable",
      any("! -p tcp -m conntrack --ctstate INVALID -j DROP" in l for l in chain)
      and "icmp-port-unreachable" in r.stdout and "icmp6-port-unreachable" in r.stdout, r.stdout)
r = run("iptables", "--print", "--queue", "0", "--coverage", "inspected", "--quic", "block")
queued = [l for l in r.stdout.splitlines() if l.startswith("-A EGRESS-INSPECTOR ") and "NFQUEUE" in l]
check("--coverage inspected: only TCP to the ports is queued",
      r.returncode == 0 and len(queued) == 2 and all("-p tcp -m multiport --dports 80,443 " in l for l in queued)
      and "INVALID" not in r.stdout, r.stdout)
r = run("iptables", "--print", "--queue", "0", "--hook", "output")
check("--hook output, coverage all, no --source: refused (it would judge the node's own traffic)",
      r.returncode == 2 and r.stdout == "" and "--source" in r.stderr, r.stdout + r.stderr)
r = run("iptables", "--print", "--queue", "0", "--hook", "output", "--source", "10.88.0.0/16")
check("... with --source it is written", r.returncode == 0 and "--src-type LOCAL -s 10.88.0.0/16" in r.stdout,
      r.stderr)
r = run("iptables", "--print", "--queue", "0", "--coverage", "inspected")
check("--coverage inspected --quic inspect (the default): UDP 443 is queued too",
      "-p udp --dport 443 -m conntrack --ctdir ORIGINAL -j NFQUEUE" in r.stdout, r.stdout)
r = run("iptables", "--print", "--queue", "0", "--quic", "sometimes")
check("--quic sometimes is refused", r.returncode == 2 and "--quic" in r.stderr, r.stderr)
r = run("iptables", "--print", "--queue", "0", "--coverage", "some")
check("--coverage some is refused", r.returncode == 2 and "--coverage" in r.stderr, r.stderr)
r = run("replay", *args, "--coverage", "inspected")
r2 = run("replay", *args)
check("replay --coverage inspected prints no more lines than the default",
      r.returncode == 0 and r2.returncode == 0 and len(r.stdout.splitlines()) <= len(r2.stdout.splitlines()),
      r.stderr)

for cmd, says in (("replay", "--pcap"), ("run", "--control"), ("iptables", "--apply"), ("check-rules", "check-rules"),
                  ("suggest", "--min-count"), ("explain", "--source"), ("diff", "OLD.rules"),
                  ("observe", "--follow"), ("status", "status --control")):
    r = run(cmd, "--help")
    check(f"{cmd} --help prints its usage on stdout", r.returncode == 0 and says in r.stdout and r.stderr == "",
          r.stdout + r.stderr)

print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
