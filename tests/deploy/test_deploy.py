#!/usr/bin/python3
"""The Kubernetes manifests and the image, checked statically (no cluster runs here):
what the DaemonSet runs is what the CLI accepts, the probes hit the real endpoints, the
mounted path is the one the daemon reads, and the image carries the libraries the binary
needs. Usage: test_deploy.py --bin build/egress-inspector. Ends with 'N passed, N failed'."""
import argparse, os, re, stat, subprocess, sys, tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
BIN = os.path.abspath(ap.parse_args().bin)
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))


docs, objects = {}, []
for name in sorted(os.listdir(DEPLOY)):
    if name.endswith(".yaml"):
        with open(os.path.join(DEPLOY, name)) as f:
            all_docs = [d for d in yaml.safe_load_all(f) if d is not None]
        docs[name] = all_docs[0]
        objects += all_docs
check("every manifest parses", len(docs) >= 4, sorted(docs))
kust = docs["kustomization.yaml"]
check("the kustomization lists files that exist",
      all(os.path.exists(os.path.join(DEPLOY, r)) for r in kust["resources"]), kust["resources"])

ds = docs["daemonset.yaml"]
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
from_api = {e["name"]: e["valueFrom"] for e in c["env"] if "valueFrom" in e}
check("NODE_NAME comes from the downward API's spec.nodeName",
      from_api.get("NODE_NAME") == {"fieldRef": {"fieldPath": "spec.nodeName"}}, from_api)
by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects if "metadata" in o}  # not the kustomization
sa = by_kind.get(("ServiceAccount", pod.get("serviceAccountName")))
role = by_kind.get(("ClusterRole", "egress-inspector"))
binding = by_kind.get(("ClusterRoleBinding", "egress-inspector"))
check("the DaemonSet's ServiceAccount exists, in its namespace",
      sa is not None and sa["metadata"]["namespace"] == ds["metadata"]["namespace"], pod.get("serviceAccountName"))
check("its ClusterRole may get, list and watch pods and namespaces, and nothing more",
      role is not None and role["rules"] == [{"apiGroups": [""], "resources": ["pods", "namespaces"],
                                              "verbs": ["get", "list", "watch"]}], role)
check("the binding gives that role to that account",
      binding is not None and binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                                     "kind": "ClusterRole", "name": "egress-inspector"}
      and binding["subjects"] == [{"kind": "ServiceAccount", "name": pod.get("serviceAccountName"),
                                   "namespace": ds["metadata"]["namespace"]}], binding)
check("the kustomization applies the RBAC", "rbac.yaml" in docs["kustomization.yaml"]["resources"])
check("hostNetwork, on every node, node-critical",
      pod.get("hostNetwork") is True and {"operator": "Exists"} in pod["tolerations"]
      and pod.get("priorityClassName") == "system-node-critical")
caps = c["securityContext"]["capabilities"]["add"]
check("NET_ADMIN and NET_RAW, not privileged",
      set(caps) == {"NET_ADMIN", "NET_RAW"} and c["securityContext"].get("privileged") is False)
check("requests and limits set", all(k in c["resources"][x] for x in ("requests", "limits") for k in ("cpu", "memory")))
port = int(env["EI_METRICS"].rsplit(":", 1)[1])
check("the liveness probe is /healthz on the metrics port",
      c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port})
check("the readiness probe is /readyz on the metrics port",
      c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port})
mount = c["volumeMounts"][0]
vol = next(v for v in pod["volumes"] if v["name"] == mount["name"])
cm = docs["configmap.yaml"]
check("the rules file the daemon reads is the mounted ConfigMap key",
      os.path.dirname(env["EI_RULES"]) == mount["mountPath"] and mount.get("readOnly") is True
      and vol["configMap"]["name"] == cm["metadata"]["name"]
      and os.path.basename(env["EI_RULES"]) in cm["data"])
control = next((m for m in c["volumeMounts"] if m["mountPath"] == os.path.dirname(env.get("EI_CONTROL", "-"))), None)
check("the control socket's directory is an emptyDir of its own (EI_CONTROL)",
      control is not None and "emptyDir" in next(v for v in pod["volumes"] if v["name"] == control["name"]), env)
with tempfile.TemporaryDirectory() as tmp:
    rules = os.path.join(tmp, "rules")
    with open(rules, "w") as f:
        f.write(cm["data"][os.path.basename(env["EI_RULES"])])
    r = subprocess.run([BIN, "check-rules", rules], capture_output=True, text=True)
    check("the ConfigMap's rules are valid", r.returncode == 0, r.stderr)

    # The start order, with the DaemonSet's environment and a recording stand-in that can
    # be told to fail one step: a step that fails means no node rule is ever applied. (The
    # image itself runs in tests/e2e/container_test.sh.)
    def entrypoint(fail_on):
        calls = os.path.join(tmp, "calls")
        if os.path.exists(calls):
            os.unlink(calls)
        fake = os.path.join(tmp, "egress-inspector")
        with open(fake, "w") as f:
            f.write(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\n'
                    f'case "$1" in {fail_on}) exit 3;; esac\n'
                    f'[ "$1" = iptables ] && [ "$2" = --print ] && exec {BIN} "$@"\nexit 0\n')
        os.chmod(fake, stat.S_IRWXU)
        r = subprocess.run(["sh", os.path.join(DEPLOY, "entrypoint.sh")], capture_output=True, text=True,
                           env={**env, "PATH": f"{tmp}:/usr/bin:/bin", "EI_IPTABLES": "keep",
                                "EI_CONTROL": os.path.join(tmp, "run", "control.sock")},
                           timeout=30)
        return r, open(calls).read().splitlines() if os.path.exists(calls) else []
    r, calls = entrypoint("check-rules")
    check("bad rules: the entrypoint stops before any node rule",
          r.returncode != 0 and calls == [f"check-rules {env['EI_RULES']}"], calls)
    r, calls = entrypoint("nothing")
    printed = [c for c in calls if c.startswith("iptables --print")]
    check("the node rule options are validated with the real CLI before anything runs",
          len(printed) == 1 and not any(c.startswith("iptables --apply") for c in calls), calls)
    r, calls = entrypoint("run")
    check("a daemon that dies at start: no node rule applied, its status returned",
          r.returncode != 0 and not any("--apply" in c for c in calls) and any(c.startswith("run ") for c in calls),
          (r.returncode, calls, r.stderr[-300:]))
    if printed:
        out = subprocess.run([BIN] + printed[0].split(), capture_output=True, text=True)
        check("the node rules command is one the CLI accepts", out.returncode == 0
              and "NFQUEUE --queue-balance 0:1" in out.stdout and "cali+" in out.stdout, out.stderr)
        check("DNS answers to the pods go to the queue after the flow queues, bypassed when no daemon listens",
              re.search(r"-A EGRESS-INSPECTOR-DNS -o cali\+ .*-p udp --sport 53 -m conntrack --ctdir REPLY"
                        r" --ctorigdst 10\.96\.0\.10/32 -j NFQUEUE --queue-num 2 --queue-bypass",
                        out.stdout) is not None, out.stdout[-400:])
        check("... and only from the named resolver (EI_RESOLVER: the cluster DNS service), with the "
              "pods' questions to it", "--dns-from 10.96.0.10" in printed[0] and
              re.search(r"-A EGRESS-INSPECTOR-DNS -i cali\+ .*-p udp --dport 53 -m conntrack --ctdir ORIGINAL"
                        r" --ctorigdst 10\.96\.0\.10/32", out.stdout) is not None, printed[0])
        runs = [c for c in calls if c.startswith("run ")]
        usage = subprocess.run([BIN, "help"], capture_output=True, text=True).stdout
        opts = re.findall(r"--[a-z-]+", runs[0]) if runs else ["(no run)"]
        check("every option the daemon is started with is one `run` documents",
              runs and all(o in usage for o in opts) and f"--mode {env['EI_MODE']}" in runs[0]
              and f"--rules {env['EI_RULES']}" in runs[0] and "--in-iface" not in runs[0], opts)
        check("EI_CONTROL: the daemon serves observe and status on the socket",
              runs and f"--control {os.path.join(tmp, 'run', 'control.sock')}" in runs[0], runs)
        check("EI_KUBE=auto: the daemon watches the pods with its service account",
              env.get("EI_KUBE") == "auto" and runs and "--kube auto" in runs[0]
              and f"--workload-wait {env['EI_WORKLOAD_WAIT']}" in runs[0], runs)

dockerfile = open(os.path.join(DEPLOY, "Dockerfile")).read()
stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
check("multi-stage: built on Debian 12, run on debian:12-slim", stages == ["debian:12", "debian:12-slim"], stages)
runtime = dockerfile.split("FROM debian:12-slim", 1)[1]
needed = re.findall(r"NEEDED.*\[(.*)\]", subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True).stdout)
missing = []
for lib in needed:
    if lib.startswith(("libc.so", "libm.so", "ld-linux")):
        continue
    path = subprocess.run(["sh", "-c", f"ldconfig -p | awk '/{re.escape(lib)} / {{print $NF; exit}}'"],
                          capture_output=True, text=True).stdout.strip()
    # by file name: with merged /usr, dpkg may know the file under /lib or /usr/lib
    pkg = subprocess.run(["dpkg", "-S", os.path.basename(os.path.realpath(path))],
                         capture_output=True, text=True).stdout.split(":")[0]
    if not pkg or pkg not in runtime:
        missing.append(f"{lib} ({pkg or '?'})")
check("the runtime image installs the package of every library the binary needs", not missing, missing)
check("the image's entrypoint is the script that applies the rules",
      "COPY deploy/entrypoint.sh /usr/local/bin/egress-inspector-node" in dockerfile
      and 'ENTRYPOINT ["/usr/local/bin/egress-inspector-node"]' in dockerfile)

print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
