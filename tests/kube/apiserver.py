#!/usr/bin/env python3
"""A stand-in Kubernetes API server for tests: pods and namespaces, list and watch.

It speaks the real API's wire protocol closely enough for kubectl and client-go style
clients: HTTPS with a bearer token, JSON objects in the API's own shape, one global
resourceVersion, lists with chunking (limit/continue), watches that resume from a
resourceVersion, bookmarks, 410 Expired after compaction, and meta.k8s.io Table output
for kubectl's columns. It is strict on purpose: a request the real server would refuse
(bad token, bad selector, unknown query parameter, bad resourceVersion) is refused.

Semantics worth knowing (they follow the real kube-apiserver 1.20 unless noted):

  resourceVersion  One integer counter over both resources (etcd's revision), as a
                   string. Every add, modify and delete bumps it and is kept in the event
                   history. An update that changes nothing is a no-op (no bump, no event).
  compaction       The history holds every event after the "floor" RV F. A watch or
                   list from RV X < F is too old: a list gets HTTP 410 (reason Expired);
                   a watch gets HTTP 200 with one ERROR event (code 410) and ends. X = F
                   is fine: nothing after it is lost. POST /compact sets F to the
                   current RV.  Stricter than real: a plain list with an old RV and no
                   limit (NotOlderThan) is answered 410 too, where the real server's
                   cache would serve it.
  restarts         With --state FILE holding "resourceVersion": N (as this server
                   saves it), the history before the restart is gone: F = N, so every
                   RV below N is too old (as a restart plus etcd compaction may do).
                   A file without "resourceVersion" is a fresh cluster: its namespaces
                   then pods are created at start, in file order, as ADDED events with
                   RV 1, 2, ... and F = 0, so a watch from any RV >= 0 replays them.
  RV too large     A list or watch from an RV newer than the server's waits up to 3 s
                   for it, then gets 504 (reason Timeout, "Too large resource version").
  watch            resourceVersion absent or "0": synthetic ADDED events for the current
                   state, then live events. RV X: every event after X from the history,
                   then live ones. Selectors apply to the old and the new object of each
                   event: an object that starts to match is ADDED, one that stops
                   matching is DELETED (the old object, stamped with the event's RV).
                   Bookmarks (allowWatchBookmarks=true) every --bookmark-interval s carry
                   the RV up to which the watch has seen every event. timeoutSeconds
                   ends the stream cleanly (the final zero-length chunk).
  list RV          absent: the current state. "0": the current state, limit ignored (the
                   real server answers RV=0 from its cache, unpaged). X with a limit,
                   or resourceVersionMatch=Exact: the state exactly at X (rebuilt from
                   the history). X alone, or NotOlderThan: the current state.
  continue         Tokens are as the real server's (base64url JSON {"v","rv","start"});
                   every page is the state at the first page's RV; a token older than F
                   gets 410 Expired.
  tables           Accept: application/json;as=Table;v=v1;g=meta.k8s.io (or v1beta1)
                   gets a meta.k8s.io Table: pods NAME READY STATUS RESTARTS AGE, and
                   IP NODE NOMINATED-NODE READINESS-GATES with -o wide; namespaces NAME
                   STATUS AGE. Rows carry PartialObjectMetadata (includeObject=
                   Metadata, the default), the object (Object) or nothing (None). A
                   watch with that Accept gets each event's object as a one-row Table.
  namespaces       Not created for you (no default, no kube-system). Deleting one sets
                   it Terminating (MODIFIED), deletes its pods, then deletes it. Pods
                   can only be created in an existing, Active namespace.
  not served       Anything but GET on the API port (405); /api/v1/watch/... legacy paths,
                   protobuf, other resources and groups (404 / 406); /openapi/v2 (404,
                   which kubectl get does not need).
"""

import argparse
import base64
import copy
import datetime
import hmac
import http.server
import ipaddress
import json
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

CONTROL_HELP = """\
control interface (plain HTTP on --control, 127.0.0.1 only, no auth; JSON bodies):
  POST   /pods               body: a Pod; upsert by namespace/name; uid assigned if
                             missing; a different uid replaces the pod (DELETED then
                             ADDED). podIPs is derived from podIP when absent.
                             Answers the stored pod (with its resourceVersion).
  DELETE /pods/NS/NAME       deletes the pod (one DELETED event)
  POST   /namespaces         body: a Namespace; upsert by name
  DELETE /namespaces/NAME    Terminating (MODIFIED), its pods DELETED, then DELETED
  POST   /compact            every RV before the current one becomes too old (410)
  POST   /drop-watches       aborts every open watch mid-stream: the TCP connection
                             closes, no final chunk, no TLS close_notify
  POST   /expire-watches     compacts, then sends every open watch the 410 ERROR event
                             (RV the watch had reached) and ends it cleanly
  GET    /stats              counts: requests, lists/gets/watches by resource, 401s,
                             410s, bookmarks, open watches, live threads; and the
                             last 1000 requests' method, path, query string, status
  POST   /reset-stats        zeroes the counts and forgets the queries
  GET    /healthz            "ok"

a client should use (URL-encode the selector values):
  list:   GET /api/v1/pods?fieldSelector=spec.nodeName%3DNODE&limit=500
          (then &continue=TOKEN while metadata.continue is set)
  watch:  GET /api/v1/pods?fieldSelector=spec.nodeName%3DNODE&watch=1
              &resourceVersion=RV_OF_THE_LIST&allowWatchBookmarks=true&timeoutSeconds=300
  on 410 (list, or a watch's ERROR event): list again without resourceVersion.
"""

MAX_BODY = 1 << 20          # control request bodies
HISTORY_QUERIES = 1000      # requests remembered for /stats
RV_WAIT_SECONDS = 3.0       # how long a too-large RV waits before 504, as the real server
POLL_SECONDS = 0.25         # how often a watch checks for a gone client or an abort

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

# The pod fields the real API can select on (pkg/registry/core/pod/strategy.go, 1.20).
POD_FIELDS = {
    "metadata.name": lambda p: p["metadata"]["name"],
    "metadata.namespace": lambda p: p["metadata"]["namespace"],
    "spec.nodeName": lambda p: p["spec"].get("nodeName", ""),
    "spec.restartPolicy": lambda p: p["spec"].get("restartPolicy", ""),
    "spec.schedulerName": lambda p: p["spec"].get("schedulerName", ""),
    "spec.serviceAccountName": lambda p: p["spec"].get("serviceAccountName", ""),
    "status.phase": lambda p: p["status"].get("phase", ""),
    "status.podIP": lambda p: p["status"].get("podIP", ""),
    "status.nominatedNodeName": lambda p: p["status"].get("nominatedNodeName", ""),
}
NAMESPACE_FIELDS = {
    "metadata.name": lambda n: n["metadata"]["name"],
    "status.phase": lambda n: n["status"].get("phase", ""),
}

# Query parameters the API port understands; anything else is a 400 (the real server
# ignores unknown ones, but a typo such as fieldselector= would then silently list
# every pod of the cluster: here it fails loudly).
LIST_PARAMS = {"fieldSelector", "labelSelector", "limit", "continue", "resourceVersion",
               "resourceVersionMatch", "watch", "allowWatchBookmarks", "timeoutSeconds",
               "timeout", "includeObject", "pretty"}
GET_PARAMS = {"resourceVersion", "timeout", "includeObject", "pretty"}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg):
    sys.stderr.write("apiserver: %s\n" % msg)
    sys.stderr.flush()


class ApiError(Exception):
    """An error answered as a v1 Status (HTTP status = code)."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        return status_obj(self.code, self.reason, self.message, self.details)


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason}
    if details is not None:
        s["details"] = details
    s["code"] = code
    return s


def bad_request(msg):
    return ApiError(400, "BadRequest", msg)


def invalid(kind, msg):
    return ApiError(422, "Invalid", msg, {"kind": kind})


def expired_status(x, floor):
    return status_obj(410, "Expired", "too old resource version: %d (%d)" % (x, floor))


# ---------------------------------------------------------------------------- selectors

def split_unescaped(s, sep):
    """Splits on sep where it is not escaped by a backslash (the escapes are kept)."""
    parts, cur, i = [], [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def unescape_field_value(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\":
            if i + 1 >= len(v) or v[i + 1] not in "\\,=":
                raise bad_request("invalid field selector: invalid escape sequence in %r" % v)
            out.append(v[i + 1])
            i += 2
        else:
            if v[i] in ",=":
                raise bad_request("invalid field selector: unescaped %r in %r" % (v[i], v))
            out.append(v[i])
            i += 1
    return "".join(out)


def parse_field_selector(s, fields):
    """fields.ParseSelector: terms key=value, key==value, key!=value joined by commas.
    Returns a list of (key, op, value); an unsupported field is a 400 as in the real API."""
    terms = []
    if s == "":
        return terms
    for term in split_unescaped(s, ","):
        for op in ("!=", "==", "="):
            idx = find_unescaped(term, op)
            if idx >= 0:
                key, value = term[:idx], term[idx + len(op):]
                break
        else:
            raise bad_request("invalid field selector: %r: missing an operator" % term)
        if key not in fields:
            raise bad_request('field label not supported: %s' % key)
        terms.append((key, "!=" if op == "!=" else "=", unescape_field_value(value)))
    return terms


def find_unescaped(s, op):
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s.startswith(op, i):
            return i
        i += 1
    return -1


def field_match(terms, fields, obj):
    for key, op, value in terms:
        have = fields[key](obj) or ""
        if (have == value) != (op == "="):
            return False
    return True


LABEL_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|[^\s!=(),]+)")


def parse_label_selector(s):
    """labels.Parse: KEY, !KEY, KEY=V, KEY==V, KEY!=V, KEY in (V,...), KEY notin (V,...),
    KEY gt N, KEY lt N (the real selector's '>' '<'), joined by commas."""
    toks = []
    pos = 0
    s = s.strip()
    while pos < len(s):
        m = LABEL_TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise bad_request("unable to parse requirement: invalid label selector %r" % s)
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    reqs, i = [], 0

    def need(cond, what):
        if not cond:
            raise bad_request("unable to parse requirement: %s in label selector %r" % (what, s))

    def key_ok(k):
        need(k not in ("!", "=", "==", "!=", "(", ")", ","), "expected a key")
        name = k.rsplit("/", 1)[-1]
        prefix = k[:-len(name) - 1] if "/" in k else ""
        need(len(name) <= 63 and QUALIFIED_NAME.match(name), "invalid label key %r" % k)
        need(prefix == "" or (len(prefix) <= 253 and DNS1123_SUBDOMAIN.match(prefix)),
             "invalid label key prefix %r" % k)
        return k

    def value_ok(v):
        need(len(v) <= 63 and LABEL_VALUE.match(v), "invalid label value %r" % v)
        return v

    while i < len(toks):
        if toks[i] == "!":
            need(i + 1 < len(toks), "expected a key after '!'")
            reqs.append((key_ok(toks[i + 1]), "!", None))
            i += 2
        else:
            key = key_ok(toks[i])
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append((key, "exists", None))
            elif toks[i] in ("=", "==", "!="):
                op = "!=" if toks[i] == "!=" else "="
                i += 1
                value = ""
                if i < len(toks) and toks[i] != ",":
                    value = value_ok(toks[i])
                    i += 1
                reqs.append((key, op, value))
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                i += 1
                need(i < len(toks) and toks[i] == "(", "expected '(' after %s" % op)
                i += 1
                values = []
                while True:
                    need(i < len(toks), "unterminated value list")
                    if toks[i] == ")":
                        i += 1
                        break
                    if toks[i] == ",":
                        i += 1
                        continue
                    values.append(value_ok(toks[i]))
                    i += 1
                need(values, "empty value list")
                reqs.append((key, op, set(values)))
            elif toks[i] in ("gt", "lt"):
                op = toks[i]
                need(i + 1 < len(toks) and re.match(r"^-?\d+$", toks[i + 1]), "expected an integer")
                reqs.append((key, op, int(toks[i + 1])))
                i += 2
            else:
                need(False, "unexpected %r" % toks[i])
        if i < len(toks):
            need(toks[i] == ",", "expected ','")
            i += 1
            need(i < len(toks), "trailing ','")
    return reqs


def label_match(reqs, obj):
    labels = obj["metadata"].get("labels") or {}
    for key, op, value in reqs:
        have = labels.get(key)
        if op == "exists" and have is None:
            return False
        if op == "!" and have is not None:
            return False
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "in" and have not in value:
            return False
        if op == "notin" and have in value:
            return False
        if op in ("gt", "lt"):
            try:
                n = int(have)
            except (TypeError, ValueError):
                return False
            if (op == "gt" and not n > value) or (op == "lt" and not n < value):
                return False
    return True


class Filter:
    """What one list or watch asks for: a resource, maybe a namespace, its selectors."""

    def __init__(self, resource, namespace, field_terms, label_reqs):
        self.resource, self.namespace = resource, namespace
        self.field_terms, self.label_reqs = field_terms, label_reqs
        self.fields = POD_FIELDS if resource == "pods" else NAMESPACE_FIELDS

    def empty(self):
        return not self.field_terms and not self.label_reqs

    def in_scope(self, key):
        return self.namespace is None or key.startswith(self.namespace + "/")

    def match(self, obj):
        return field_match(self.field_terms, self.fields, obj) and label_match(self.label_reqs, obj)


# ---------------------------------------------------------------------------- validation

def check(cond, kind, msg):
    if not cond:
        raise invalid(kind, msg)


def check_meta_common(meta, kind):
    check(isinstance(meta, dict), kind, "metadata must be an object")
    allowed = {"name", "namespace", "uid", "resourceVersion", "labels", "annotations",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
               "ownerReferences", "generation", "finalizers"}
    extra = set(meta) - allowed
    check(not extra, kind, "metadata: unknown fields %s" % sorted(extra))
    labels = meta.get("labels", {})
    check(isinstance(labels, dict), kind, "metadata.labels must be an object")
    for k, v in labels.items():
        name = k.rsplit("/", 1)[-1]
        prefix = k[:-len(name) - 1] if "/" in k else ""
        check(len(name) <= 63 and QUALIFIED_NAME.match(name) and
              (prefix == "" or DNS1123_SUBDOMAIN.match(prefix)), kind, "invalid label key %r" % k)
        check(isinstance(v, str) and len(v) <= 63 and LABEL_VALUE.match(v), kind,
              "invalid label value %r" % (v,))
    ann = meta.get("annotations", {})
    check(isinstance(ann, dict) and all(isinstance(v, str) for v in ann.values()), kind,
          "metadata.annotations must map strings to strings")
    for ts in ("creationTimestamp", "deletionTimestamp"):
        if meta.get(ts) is not None:
            check(isinstance(meta[ts], str) and TIMESTAMP.match(meta[ts]), kind,
                  "metadata.%s must be an RFC 3339 time" % ts)
    if "uid" in meta:
        check(isinstance(meta["uid"], str) and meta["uid"], kind, "metadata.uid must be a string")


def check_top(obj, kind):
    check(isinstance(obj, dict), kind, "the body must be a JSON object")
    extra = set(obj) - {"kind", "apiVersion", "metadata", "spec", "status"}
    check(not extra, kind, "unknown top-level fields %s" % sorted(extra))
    check(obj.get("kind", kind) == kind, kind, "kind must be %s" % kind)
    check(obj.get("apiVersion", "v1") == "v1", kind, "apiVersion must be v1")


def normalize_pod(body):
    """A validated copy of a pod as the server stores it (no kind/apiVersion)."""
    check_top(body, "Pod")
    meta = copy.deepcopy(body.get("metadata"))
    check_meta_common(meta, "Pod")
    name, ns = meta.get("name"), meta.get("namespace")
    check(isinstance(name, str) and len(name) <= 253 and DNS1123_SUBDOMAIN.match(name), "Pod",
          "metadata.name: invalid pod name %r" % (name,))
    check(isinstance(ns, str) and len(ns) <= 63 and DNS1123_LABEL.match(ns), "Pod",
          "metadata.namespace: invalid namespace %r" % (ns,))
    spec = copy.deepcopy(body.get("spec", {}))
    check(isinstance(spec, dict), "Pod", "spec must be an object")
    node = spec.get("nodeName", "")
    check(isinstance(node, str) and (node == "" or DNS1123_SUBDOMAIN.match(node)), "Pod",
          "spec.nodeName: invalid node name %r" % (node,))
    check(isinstance(spec.get("hostNetwork", False), bool), "Pod", "spec.hostNetwork must be a boolean")
    containers = spec.get("containers")
    check(isinstance(containers, list) and containers, "Pod", "spec.containers: Required value")
    for c in containers:
        check(isinstance(c, dict) and isinstance(c.get("name"), str) and DNS1123_LABEL.match(c["name"]),
              "Pod", "spec.containers[].name: a DNS-1123 label is required")
        check(isinstance(c.get("image"), str) and c["image"], "Pod", "spec.containers[].image: Required value")
    status = copy.deepcopy(body.get("status", {}))
    check(isinstance(status, dict), "Pod", "status must be an object")
    status.setdefault("phase", "Pending")
    check(status["phase"] in ("Pending", "Running", "Succeeded", "Failed", "Unknown"), "Pod",
          "status.phase: unsupported value %r" % (status["phase"],))
    # podIP and podIPs as the real API keeps them: podIPs[0] is podIP, one IP per family.
    ips = status.get("podIPs")
    if ips is None and status.get("podIP"):
        ips = status["podIPs"] = [{"ip": status["podIP"]}]
    if ips is not None:
        check(isinstance(ips, list) and len(ips) <= 2 and all(isinstance(i, dict) and set(i) == {"ip"} for i in ips),
              "Pod", "status.podIPs must be a list of at most two {\"ip\": ...}")
        families = set()
        for i in ips:
            try:
                families.add(ipaddress.ip_address(i["ip"]).version)
            except (ValueError, TypeError):
                check(False, "Pod", "status.podIPs: invalid IP %r" % (i["ip"],))
        check(len(families) == len(ips), "Pod", "status.podIPs: may specify no more than one IP for each IP family")
        if ips:
            status.setdefault("podIP", ips[0]["ip"])
            check(status["podIP"] == ips[0]["ip"], "Pod", "status.podIPs[0] must be status.podIP")
        else:
            check(not status.get("podIP"), "Pod", "status.podIP is set but status.podIPs is empty")
    meta.pop("resourceVersion", None)  # the server's to assign
    meta.setdefault("labels", {})
    return {"metadata": meta, "spec": spec, "status": status}


def normalize_namespace(body):
    check_top(body, "Namespace")
    meta = copy.deepcopy(body.get("metadata"))
    check_meta_common(meta, "Namespace")
    name = meta.get("name")
    check(isinstance(name, str) and len(name) <= 63 and DNS1123_LABEL.match(name), "Namespace",
          "metadata.name: invalid namespace name %r" % (name,))
    check("namespace" not in meta, "Namespace", "metadata.namespace: a namespace is cluster-scoped")
    spec = copy.deepcopy(body.get("spec", {"finalizers": ["kubernetes"]}))
    check(isinstance(spec, dict), "Namespace", "spec must be an object")
    status = copy.deepcopy(body.get("status", {}))
    check(isinstance(status, dict), "Namespace", "status must be an object")
    status.setdefault("phase", "Active")
    check(status["phase"] == "Active", "Namespace",
          "status.phase: only Active can be posted (DELETE makes a namespace Terminating)")
    meta.pop("resourceVersion", None)
    # The real API (1.21+) always sets this label to the name, whatever was sent.
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    return {"metadata": meta, "spec": spec, "status": status}


# ---------------------------------------------------------------------------- the store

class Event:
    __slots__ = ("rv", "type", "resource", "key", "obj", "prev")

    def __init__(self, rv, etype, resource, key, obj, prev):
        # obj: the object after the change (for DELETED: the last state, stamped with rv)
        # prev: the object before it (None for ADDED)
        self.rv, self.type, self.resource, self.key, self.obj, self.prev = rv, etype, resource, key, obj, prev


class Watcher:
    def __init__(self, resource):
        self.resource = resource
        self.pos = 0          # every event up to this RV has been seen
        self.abort = None     # None, "drop" or "expire"


class Store:
    """Objects, the global RV, the event history. One Condition guards it all; it is
    notified on every change and on every abort, which is what wakes the watches."""

    def __init__(self, state_path):
        self.cond = threading.Condition()
        self.objects = {"pods": {}, "namespaces": {}}   # key ("ns/name" or "name") -> object
        self.rv = 0
        self.floor = 0            # oldest RV a list or watch may start from
        self.history = []         # Events with rv > floor (some older ones may linger)
        self.watchers = set()
        self.state_path = state_path
        if state_path and os.path.exists(state_path):
            self._load(state_path)
        self._save()

    # -- persistence
    def _load(self, path):
        with open(path) as f:
            st = json.load(f)
        if not isinstance(st, dict) or set(st) - {"pods", "namespaces", "resourceVersion", "compacted"}:
            raise SystemExit("apiserver: %s: expected {pods, namespaces, resourceVersion, compacted}" % path)
        if "resourceVersion" not in st:
            # A fresh cluster: create everything, in order, with history from RV 0.
            for ns in st.get("namespaces", []):
                self.upsert("namespaces", ns, save=False)
            for pod in st.get("pods", []):
                self.upsert("pods", pod, save=False)
            return
        # A restart: the objects as saved, the history gone.
        self.rv = int(st["resourceVersion"])
        self.floor = self.rv
        for resource, norm in (("namespaces", normalize_namespace), ("pods", normalize_pod)):
            for raw in st.get(resource, []):
                rv = (raw.get("metadata") or {}).get("resourceVersion")
                saved_status = raw.get("status")
                if resource == "namespaces":  # a saved namespace may be Terminating
                    raw = {k: v for k, v in raw.items() if k != "status"}
                obj = norm(raw)
                if not (isinstance(rv, str) and rv.isdigit() and 0 < int(rv) <= self.rv):
                    raise SystemExit("apiserver: %s: %s %s has no resourceVersion <= %d"
                                     % (path, resource, obj["metadata"]["name"], self.rv))
                obj["metadata"]["resourceVersion"] = rv
                obj["metadata"].setdefault("uid", str(uuid.uuid4()))
                obj["metadata"].setdefault("creationTimestamp", now_rfc3339())
                if resource == "namespaces" and isinstance(saved_status, dict):
                    obj["status"] = saved_status
                self.objects[resource][self.key(resource, obj)] = obj

    def _save(self):
        if not self.state_path:
            return
        st = {"resourceVersion": self.rv, "compacted": self.floor,
              "namespaces": [self.objects["namespaces"][k] for k in sorted(self.objects["namespaces"])],
              "pods": [self.objects["pods"][k] for k in sorted(self.objects["pods"])]}
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f, indent=1)
        os.replace(tmp, self.state_path)

    @staticmethod
    def key(resource, obj):
        m = obj["metadata"]
        return m["namespace"] + "/" + m["name"] if resource == "pods" else m["name"]

    # -- changes (caller holds no lock; each takes it)
    def _commit(self, etype, resource, key, obj, prev):
        self.rv += 1
        if etype == "DELETED":
            obj = copy.deepcopy(prev)
            del self.objects[resource][key]
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if etype != "DELETED":
            self.objects[resource][key] = obj
        self.history.append(Event(self.rv, etype, resource, key, copy.deepcopy(obj), prev))
        self.cond.notify_all()
        return obj

    def upsert(self, resource, body, save=True):
        obj = normalize_pod(body) if resource == "pods" else normalize_namespace(body)
        key = self.key(resource, obj)
        meta = obj["metadata"]
        with self.cond:
            if resource == "pods":
                ns = self.objects["namespaces"].get(meta["namespace"])
                if ns is None:
                    raise ApiError(404, "NotFound", 'namespaces "%s" not found' % meta["namespace"],
                                   {"name": meta["namespace"], "kind": "namespaces"})
                if ns["status"].get("phase") != "Active":
                    raise ApiError(403, "Forbidden", "unable to create new content in namespace %s "
                                   "because it is being terminated" % meta["namespace"])
            old = self.objects[resource].get(key)
            if old is not None and meta.get("uid") not in (None, old["metadata"]["uid"]):
                # The same name with a new uid is a new object: delete the old one first.
                self._commit("DELETED", resource, key, None, old)
                old = None
            if old is None:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now_rfc3339())
                out = self._commit("ADDED", resource, key, obj, None)
            else:
                om = old["metadata"]
                if resource == "namespaces" and old["status"].get("phase") == "Terminating":
                    raise ApiError(409, "Conflict", 'namespace "%s" is being terminated' % om["name"])
                meta["uid"] = om["uid"]
                meta["creationTimestamp"] = om["creationTimestamp"]
                if resource == "pods":
                    for f in ("nodeName", "hostNetwork"):
                        if old["spec"].get(f) and obj["spec"].get(f) != old["spec"].get(f):
                            raise invalid("Pod", "spec.%s: may not be changed once set (post a new uid "
                                          "to replace the pod)" % f)
                stripped = copy.deepcopy(old)
                stripped["metadata"].pop("resourceVersion")
                if stripped == obj:
                    return copy.deepcopy(old)  # nothing changed: no new RV, no event
                out = self._commit("MODIFIED", resource, key, obj, old)
            if save:
                self._save()
            return copy.deepcopy(out)

    def delete(self, resource, key):
        with self.cond:
            old = self.objects[resource].get(key)
            if old is None:
                name = key.split("/")[-1]
                raise ApiError(404, "NotFound", '%s "%s" not found' % (resource, name),
                               {"name": name, "kind": resource})
            if resource == "namespaces":
                # As the namespace controller: Terminating first, then the contents.
                if old["status"].get("phase") != "Terminating":
                    term = copy.deepcopy(old)
                    term["status"]["phase"] = "Terminating"
                    term["metadata"]["deletionTimestamp"] = now_rfc3339()
                    old = self._commit("MODIFIED", resource, key, term, old)
                for pk in sorted(k for k in self.objects["pods"] if k.startswith(key + "/")):
                    self._commit("DELETED", "pods", pk, None, self.objects["pods"][pk])
                old = self.objects[resource][key]
            out = self._commit("DELETED", resource, key, None, old)
            self._save()
            return copy.deepcopy(out)

    def compact(self):
        with self.cond:
            self.floor = self.rv
            # Keep what an open watch has not read yet; the rest can go.
            keep_from = min([self.floor] + [w.pos for w in self.watchers])
            self.history = [e for e in self.history if e.rv > keep_from]
            self._save()
            self.cond.notify_all()
            return {"compacted": self.floor, "resourceVersion": str(self.rv)}

    def abort_watches(self, how):
        with self.cond:
            n = 0
            for w in self.watchers:
                if w.abort is None:
                    w.abort, n = how, n + 1
            self.cond.notify_all()
            return n

    # -- reads (caller holds self.cond)
    def wait_for_rv(self, x):
        """Waits (lock held, as Condition.wait_for) until RV x exists; else 504."""
        if not self.cond.wait_for(lambda: self.rv >= x, RV_WAIT_SECONDS):
            raise ApiError(504, "Timeout", "Too large resource version: %d, current: %d" % (x, self.rv),
                           {"causes": [{"reason": "ResourceVersionTooLarge",
                                        "message": "Too large resource version"}],
                            "retryAfterSeconds": 1})

    def state_at(self, resource, x):
        """The objects of a resource exactly at RV x: the current ones with every later
        event undone. Needs x >= floor (the history then has every event after x)."""
        objs = dict(self.objects[resource])
        for e in reversed(self.history):
            if e.rv <= x:
                break
            if e.resource != resource:
                continue
            if e.prev is None:
                objs.pop(e.key, None)
            else:
                objs[e.key] = e.prev
        return objs

    def events_after(self, pos):
        # The history is short in tests; a linear scan from the end is enough.
        i = len(self.history)
        while i > 0 and self.history[i - 1].rv > pos:
            i -= 1
        return self.history[i:]


# ---------------------------------------------------------------------------- output

def with_kind(resource, obj):
    out = {"kind": "Pod" if resource == "pods" else "Namespace", "apiVersion": "v1"}
    out.update(obj)
    return out


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, as kubectl's AGE shows it."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm" % m if s % 60 == 0 else "%dm%ds" % (m, s % 60)
    if m < 180:
        return "%dm" % m
    h = s // 3600
    if h < 8:
        return "%dh" % h if m % 60 == 0 else "%dh%dm" % (h, m % 60)
    if h < 48:
        return "%dh" % h
    if h < 24 * 8:
        return "%dd" % (h // 24) if h % 24 == 0 else "%dd%dh" % (h // 24, h % 24)
    if h < 24 * 365 * 2:
        return "%dd" % (h // 24)
    if h < 24 * 365 * 8:
        y, d = h // (24 * 365), (h // 24) % 365
        return "%dy" % y if d == 0 else "%dy%dd" % (y, d)
    return "%dy" % (h // (24 * 365))


def age(obj):
    ts = obj["metadata"].get("creationTimestamp")
    if not ts:
        return "<unknown>"
    t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def col(name, typ, desc, priority=0, fmt=""):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


POD_COLUMNS = [
    col("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", "The aggregate status of the containers in this pod."),
    col("Restarts", "integer", "The number of times the containers in this pod have been restarted."),
    col("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created."),
    col("IP", "string", "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
    col("Node", "string", "NodeName is a request to schedule this pod onto a specific node.", 1),
    col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
    col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
]
NAMESPACE_COLUMNS = [
    col("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    col("Status", "string", "The status of the namespace"),
    col("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created."),
]


def table_cells(resource, obj):
    if resource == "namespaces":
        return [obj["metadata"]["name"], obj["status"].get("phase", ""), age(obj)]
    spec, st = obj["spec"], obj["status"]
    cs = st.get("containerStatuses") or []
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in cs)
    phase = st.get("reason") or st.get("phase", "")
    if obj["metadata"].get("deletionTimestamp"):
        phase = "Terminating"
    gates = spec.get("readinessGates") or []
    return [obj["metadata"]["name"], "%d/%d" % (ready, len(spec.get("containers", []))), phase, restarts,
            age(obj), st.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            st.get("nominatedNodeName") or "<none>",
            "%d/%d" % (0, len(gates)) if gates else "<none>"]


def to_table(resource, objs, list_meta, table_version, include):
    rows = []
    for o in objs:
        row = {"cells": table_cells(resource, o)}
        if include == "Object":
            row["object"] = with_kind(resource, o)
        elif include == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + table_version,
                             "metadata": copy.deepcopy(o["metadata"])}
        else:
            row["object"] = None
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/" + table_version, "metadata": list_meta,
            "columnDefinitions": POD_COLUMNS if resource == "pods" else NAMESPACE_COLUMNS, "rows": rows}


def negotiate(accept):
    """Content negotiation: ("json", None), ("table", "v1" | "v1beta1"), or None (406)."""
    if not accept or not accept.strip():
        return ("json", None)
    for clause in accept.split(","):
        parts = [p.strip() for p in clause.split(";")]
        mtype = parts[0].lower()
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip()
        if params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if mtype not in ("application/json", "application/*", "*/*"):
            continue
        as_ = params.get("as")
        if as_ is None:
            return ("json", None)
        if as_ == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return ("table", params["v"])
    return None


def dumps(obj, pretty=False):
    if pretty:
        return (json.dumps(obj, indent=2) + "\n").encode()
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------------------- stats

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = 0
        self.lists = {"pods": 0, "namespaces": 0}
        self.gets = {"pods": 0, "namespaces": 0}
        self.watches = {"pods": 0, "namespaces": 0}
        self.open_watches = {"pods": 0, "namespaces": 0}
        self.unauthorized = 0
        self.expired = 0
        self.bookmarks = 0
        self.tls_failures = 0
        self.queries = []

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if isinstance(getattr(self, k), dict):
                    res, n = v
                    getattr(self, k)[res] += n
                else:
                    setattr(self, k, getattr(self, k) + v)

    def seen(self, method, path, query, code):
        with self.lock:
            self.requests += 1
            self.queries.append({"method": method, "path": path, "query": query, "status": code})
            del self.queries[:-HISTORY_QUERIES]

    def snapshot(self):
        with self.lock:
            return {"requests": self.requests, "lists": dict(self.lists), "gets": dict(self.gets),
                    "watches": dict(self.watches), "open_watches": sum(self.open_watches.values()),
                    "open_watches_by_resource": dict(self.open_watches),
                    "unauthorized": self.unauthorized, "expired": self.expired,
                    "bookmarks": self.bookmarks, "tls_failures": self.tls_failures,
                    "threads": threading.active_count(),  # to spot a leak: open connections + 2
                    "queries": list(self.queries)}


# ---------------------------------------------------------------------------- API port

class WatchEnd(Exception):
    """The watch stream is over (client gone, or aborted without the final chunk)."""


class ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    sys_version = ""
    timeout = 60  # socket timeout: idle keep-alive connections and stalled writes

    # -- plumbing
    def log_request(self, code="-", size="-"):
        log("%s %s %s" % (self.command, self.path, code))
        self.server.stats.seen(self.command, urllib.parse.urlsplit(self.path).path,
                               urllib.parse.urlsplit(self.path).query, int(code) if str(code).isdigit() else code)

    def log_message(self, fmt, *args):  # errors from BaseHTTPRequestHandler itself
        log("%s: %s" % (self.client_address[0], fmt % args))

    def send_body(self, code, body, content_type="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_status(self, err):
        self.send_body(err.code, dumps(err.status()))

    def authorized(self):
        """Bearer token, compared in constant time with the token file read now."""
        try:
            with open(self.server.token_file) as f:
                want = f.read().strip()
        except OSError as e:
            log("token file: %s" % e)
            return False
        got = self.headers.get("Authorization", "")
        parts = got.split(" ")
        if not want or len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1]:
            return False
        return hmac.compare_digest(parts[1].encode(), want.encode())

    def do_GET(self):
        try:
            self.drain_body()
            if not self.authorized():
                self.server.stats.add(unauthorized=1)
                self.send_body(401, dumps(status_obj(401, "Unauthorized", "Unauthorized")))
                return
            self.route()
        except ApiError as e:
            self.send_status(e)
        except WatchEnd:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    def do_other(self):
        try:
            self.drain_body()
            if not self.authorized():
                self.server.stats.add(unauthorized=1)
                self.send_body(401, dumps(status_obj(401, "Unauthorized", "Unauthorized")))
                return
            self.send_status(ApiError(405, "MethodNotAllowed",
                                      "the server does not allow this method on the requested resource"))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_other

    def drain_body(self):
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True  # a GET with a chunked body: not worth parsing
            return
        n = self.headers.get("Content-Length") or "0"
        if not n.isdigit():
            self.close_connection = True
            raise bad_request("invalid Content-Length")
        n = int(n)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge", "request body too large")
        if n:
            self.rfile.read(n)

    # -- routing
    def route(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            q = urllib.parse.parse_qs(url.query, keep_blank_values=True, strict_parsing=False)
        except ValueError:
            raise bad_request("malformed query string")
        for k, v in q.items():
            if len(v) > 1:
                raise bad_request("query parameter %s given more than once" % k)
        self.q = {k: v[0] for k, v in q.items()}
        self.pretty = self.q.get("pretty") in ("1", "true", "True")
        segs = [urllib.parse.unquote(s) for s in url.path.split("/")[1:]]
        if segs and segs[-1] == "" and len(segs) > 1:
            segs = segs[:-1]
        p = "/" + "/".join(segs)
        self.media = negotiate(self.headers.get("Accept", ""))
        if self.media is None:
            raise ApiError(406, "NotAcceptable", "only the following media types are accepted: "
                           "application/json, application/json;as=Table;v=v1;g=meta.k8s.io")
        discovery = {"/version": self.version_info, "/api": self.api_versions, "/api/v1": self.api_v1,
                     "/apis": lambda: {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}}
        if p in discovery:
            return self.send_body(200, dumps(discovery[p](), self.pretty))
        if p in ("/healthz", "/livez", "/readyz"):
            return self.send_body(200, b"ok", "text/plain; charset=utf-8")
        if segs[:2] == ["api", "v1"]:
            rest = segs[2:]
            if rest == ["pods"]:
                return self.collection("pods", None)
            if rest == ["namespaces"]:
                return self.collection("namespaces", None)
            if len(rest) == 2 and rest[0] == "namespaces":
                return self.item("namespaces", rest[1], rest[1])
            if len(rest) == 3 and rest[0] == "namespaces" and rest[2] == "pods":
                return self.collection("pods", rest[1])
            if len(rest) == 4 and rest[0] == "namespaces" and rest[2] == "pods":
                return self.item("pods", rest[1] + "/" + rest[3], rest[3])
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def version_info(self):
        gv = self.server.git_version
        major, minor = gv.lstrip("v").split(".")[:2]
        return {"major": major, "minor": minor, "gitVersion": gv, "gitCommit": "0" * 40,
                "gitTreeState": "clean", "buildDate": "2021-01-13T13:20:00Z", "goVersion": "go1.15.5",
                "compiler": "gc", "platform": "linux/amd64"}

    def api_versions(self):
        host = self.server.server_address
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "%s:%d" % (host[0], host[1])}]}

    @staticmethod
    def api_v1():
        def res(name, singular, namespaced, kind, short):
            return {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
                    "verbs": ["get", "list", "watch"], "shortNames": [short]}
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            res("namespaces", "namespace", False, "Namespace", "ns"),
            res("pods", "pod", True, "Pod", "po")]}

    # -- params
    def check_params(self, allowed):
        extra = sorted(set(self.q) - allowed)
        if extra:
            raise bad_request("unknown query parameter(s): %s" % ", ".join(extra))

    def bool_param(self, name):
        v = self.q.get(name)
        if v is None or v == "":
            return False
        if v in ("1", "t", "T", "true", "TRUE", "True"):
            return True
        if v in ("0", "f", "F", "false", "FALSE", "False"):
            return False
        raise bad_request("%s: invalid boolean %r" % (name, v))

    def int_param(self, name, minimum=0):
        v = self.q.get(name)
        if v is None or v == "":
            return None
        if not re.match(r"^\d+$", v) or int(v) < minimum:
            raise bad_request("%s: invalid value %r" % (name, v))
        return int(v)

    def rv_param(self):
        v = self.q.get("resourceVersion")
        if v is None or v == "":
            return None
        if not re.match(r"^\d+$", v):
            raise bad_request("invalid resource version %r" % v)
        return int(v)

    def include_param(self):
        inc = self.q.get("includeObject", "") or "Metadata"
        if inc not in ("None", "Metadata", "Object"):
            raise bad_request("includeObject: unsupported value %r" % inc)
        return inc

    # -- single objects
    def item(self, resource, key, name):
        self.check_params(GET_PARAMS)
        self.rv_param()  # validated; a get always answers the current object
        self.server.stats.add(gets=(resource, 1))
        with self.server.store.cond:
            obj = copy.deepcopy(self.server.store.objects[resource].get(key))
        if obj is None:
            raise ApiError(404, "NotFound", '%s "%s" not found' % (resource, name),
                           {"name": name, "kind": resource})
        if self.media[0] == "table":
            out = to_table(resource, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                           self.media[1], self.include_param())
        else:
            out = with_kind(resource, obj)
        self.send_body(200, dumps(out, self.pretty))

    # -- lists and watches
    def collection(self, resource, namespace):
        self.check_params(LIST_PARAMS)
        fields = POD_FIELDS if resource == "pods" else NAMESPACE_FIELDS
        filt = Filter(resource, namespace,
                      parse_field_selector(self.q.get("fieldSelector", ""), fields),
                      parse_label_selector(self.q.get("labelSelector", "")))
        watch = self.bool_param("watch")
        self.bool_param("allowWatchBookmarks")
        self.int_param("timeoutSeconds")
        self.include_param()
        rvm = self.q.get("resourceVersionMatch", "")
        if rvm:
            if watch:
                raise invalid("ListOptions", "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch")
            if rvm not in ("NotOlderThan", "Exact"):
                raise invalid("ListOptions", 'resourceVersionMatch: Unsupported value: "%s": supported values: '
                              '"Exact", "NotOlderThan"' % rvm)
            if self.q.get("resourceVersion", "") == "":
                raise invalid("ListOptions", "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
                              "unless resourceVersion is provided")
            if rvm == "Exact" and self.q["resourceVersion"] == "0":
                raise invalid("ListOptions", 'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is '
                              'forbidden for resourceVersion "0"')
        if watch:
            return self.watch(filt)
        return self.list(filt, rvm)

    def list(self, filt, rvm):
        store = self.server.store
        resource = filt.resource
        self.server.stats.add(lists=(resource, 1))
        rv_s = self.q.get("resourceVersion", "")
        limit = self.int_param("limit", minimum=0) or 0
        token = self.q.get("continue", "")
        with store.cond:
            if token:
                if rv_s != "":
                    raise bad_request("specifying resource version is not allowed when using continue")
                if rvm:
                    raise invalid("ListOptions", "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                                  "forbidden when continue is provided")
                at, start = self.decode_continue(token)
                if at < store.floor:
                    self.server.stats.add(expired=1)
                    raise ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without the continue "
                                   "parameter.")
                store.wait_for_rv(at)
                objs = store.state_at(resource, at)
            else:
                start = None
                x = self.rv_param()
                if x is not None and x > 0:
                    store.wait_for_rv(x)
                    if x < store.floor:
                        self.server.stats.add(expired=1)
                        raise ApiError(410, "Expired", "The resourceVersion for the provided list is too old.")
                if rv_s == "0":
                    limit = 0  # served from the cache: unpaged, as the real server
                if x and (rvm == "Exact" or (limit and rvm != "NotOlderThan")):
                    at = x
                    objs = store.state_at(resource, at)
                else:
                    at = store.rv
                    objs = dict(store.objects[resource])
            keys = sorted(k for k in objs if filt.in_scope(k))
            rel = (lambda k: k[len(filt.namespace) + 1:]) if filt.namespace else (lambda k: k)
            if start is not None:
                keys = [k for k in keys if rel(k) > start]
            items, more_after = [], None
            for i, k in enumerate(keys):
                if limit and len(items) >= limit:
                    more_after = i
                    break
                if filt.match(objs[k]):
                    items.append(copy.deepcopy(objs[k]))
        meta = {"resourceVersion": str(at)}
        if more_after is not None and items:
            last = Store.key(resource, items[-1])
            meta["continue"] = self.encode_continue(at, rel(last))
            if filt.empty():
                meta["remainingItemCount"] = len(keys) - more_after
        if self.media[0] == "table":
            out = to_table(resource, items, meta, self.media[1], self.include_param())
        else:
            out = {"kind": "PodList" if resource == "pods" else "NamespaceList", "apiVersion": "v1",
                   "metadata": meta, "items": items}
        self.send_body(200, dumps(out, self.pretty))

    @staticmethod
    def encode_continue(rv, start):
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"},
                         separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode_continue(token):
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            t = json.loads(raw)
            ok = (isinstance(t, dict) and t.get("v") == "meta.k8s.io/v1" and isinstance(t.get("rv"), int)
                  and t["rv"] > 0 and isinstance(t.get("start"), str) and t["start"].endswith("\x00")
                  and len(t["start"]) > 1 and not t["start"].startswith("/") and ".." not in t["start"])
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise bad_request("continue key is not valid")
        return t["rv"], t["start"][:-1]

    # -- the watch stream
    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def client_gone(self):
        """True when the client closed its side (or sent anything: it may not mid-watch)."""
        sock = self.connection
        try:
            readable = sock.pending() > 0 or select.select([sock], [], [], 0)[0]
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        try:
            sock.settimeout(0.0)
            sock.recv(1)  # b"" is EOF; data would be a protocol violation: either ends it
            return True
        except (ssl.SSLWantReadError, BlockingIOError):
            return False  # a TLS record without application data
        except OSError:
            return True
        finally:
            try:
                sock.settimeout(self.timeout)
            except OSError:
                pass

    def watch(self, filt):
        store, stats, resource = self.server.store, self.server.stats, filt.resource
        bookmarks = self.bool_param("allowWatchBookmarks")
        timeout = self.int_param("timeoutSeconds") or self.server.max_watch_seconds
        table = self.media if self.media[0] == "table" else None
        include = self.include_param()
        rv_s = self.q.get("resourceVersion", "")
        stats.add(watches=(resource, 1))
        started = time.monotonic()
        initial, expired = [], None
        with store.cond:
            if rv_s in ("", "0"):
                # Synthetic ADDED events for the current state, then live events.
                initial = [("ADDED", o) for k, o in sorted(store.objects[resource].items())
                           if filt.in_scope(k) and filt.match(o)]
                initial = [(t, copy.deepcopy(o)) for t, o in initial]
                pos = store.rv
            else:
                x = self.rv_param()
                store.wait_for_rv(x)  # 504 before the stream starts, as the real server
                if x < store.floor:
                    expired = expired_status(x, store.floor)
                pos = x
            w = Watcher(resource)
            w.pos = pos
            if expired is None:
                store.watchers.add(w)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent, ended = 0, "timeout"

        def emit(etype, obj):
            nonlocal sent
            if table and etype in ("ADDED", "MODIFIED", "DELETED"):
                obj = to_table(resource, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                               table[1], include)
            elif etype in ("ADDED", "MODIFIED", "DELETED"):
                obj = with_kind(resource, obj)
            self.chunk(dumps({"type": etype, "object": obj}))
            sent += 1

        if expired is not None:
            stats.add(expired=1)
            emit("ERROR", expired)
            self.wfile.write(b"0\r\n\r\n")
            log("watch %s ended: expired, 1 event" % self.path)
            return
        stats.add(open_watches=(resource, 1))
        try:
            for etype, obj in initial:
                emit(etype, obj)
            deadline = started + timeout
            interval = self.server.bookmark_interval
            next_bookmark = started + interval
            while True:
                with store.cond:
                    wake = min(deadline, next_bookmark if bookmarks else deadline, time.monotonic() + POLL_SECONDS)
                    if not store.events_after(pos) and w.abort is None:
                        store.cond.wait(max(0.0, wake - time.monotonic()))
                    events = store.events_after(pos)
                    abort, floor = w.abort, store.floor
                    top = store.rv
                for e in events:
                    if e.resource != resource or not filt.in_scope(e.key):
                        continue
                    # The real cacher's rule: match on the new object and on the old one.
                    cur = e.type != "DELETED" and filt.match(e.obj)
                    old = e.prev is not None and filt.match(e.prev)
                    if cur and not old:
                        emit("ADDED", copy.deepcopy(e.obj))
                    elif cur and old:
                        emit("MODIFIED", copy.deepcopy(e.obj))
                    elif old:
                        gone = copy.deepcopy(e.prev)
                        gone["metadata"]["resourceVersion"] = str(e.rv)
                        emit("DELETED", gone)
                pos = max(pos, top)
                with store.cond:
                    w.pos = pos
                if abort == "drop":
                    # Abort mid-stream: no final chunk, no TLS close_notify; just the TCP close.
                    ended = "dropped"
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    raise WatchEnd()
                if abort == "expire":
                    stats.add(expired=1)
                    emit("ERROR", expired_status(pos, floor))
                    ended = "expired"
                    break
                now = time.monotonic()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    emit("BOOKMARK", {"kind": "Pod" if resource == "pods" else "Namespace",
                                      "apiVersion": "v1", "metadata": {"resourceVersion": str(pos)}})
                    stats.add(bookmarks=1)
                    next_bookmark = now + interval
                if self.client_gone():
                    ended = "client gone"
                    raise WatchEnd()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError) as e:
            if ended not in ("dropped", "client gone"):
                ended = "write failed (%s)" % e.__class__.__name__
            raise WatchEnd()
        finally:
            with store.cond:
                store.watchers.discard(w)
            stats.add(open_watches=(resource, -1))
            log("watch %s ended: %s, %d events, %.1fs" % (self.path, ended, sent, time.monotonic() - started))


class TLSServer(http.server.ThreadingHTTPServer):
    """HTTPS with the TLS handshake in the connection's own thread, not the accept loop."""
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, ctx, store, stats, args):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, ApiHandler)
        self.ctx, self.store, self.stats = ctx, store, stats
        self.token_file = args.token_file
        self.bookmark_interval = args.bookmark_interval
        self.max_watch_seconds = args.max_watch_seconds
        self.git_version = args.git_version

    def finish_request(self, request, client_address):
        # No Nagle: headers and body go out in separate writes, and a client's delayed
        # ACK would otherwise hold every small response for 40 ms.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(10)  # for the handshake; the handler then sets its own
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.stats.add(tls_failures=1)
            log("%s: TLS handshake failed: %s" % (client_address[0], e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        log("%s: %s" % (client_address[0], sys.exc_info()[1]))


# ---------------------------------------------------------------------------- control port

class ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver-control"
    sys_version = ""
    timeout = 30

    def log_request(self, code="-", size="-"):
        log("control %s %s %s" % (self.command, self.path, code))

    def log_message(self, fmt, *args):
        log("control: %s" % (fmt % args))

    def reply(self, code, obj):
        body = dumps(obj)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = self.headers.get("Content-Length", "")
        n = int(n) if n.isdigit() else -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise ApiError(411 if n < 0 else 413, "BadRequest", "a JSON body with a Content-Length is required")
        try:
            return json.loads(self.rfile.read(n))
        except ValueError as e:
            raise bad_request("body is not JSON: %s" % e)

    def dispatch(self):
        store, stats = self.server.store, self.server.stats
        segs = [urllib.parse.unquote(s) for s in urllib.parse.urlsplit(self.path).path.split("/")[1:]]
        m = self.command
        if m == "GET" and segs == ["stats"]:
            return 200, stats.snapshot()
        if m == "GET" and segs == ["healthz"]:
            return 200, "ok"
        if m == "POST" and segs == ["pods"]:
            return 200, store.upsert("pods", self.body())
        if m == "POST" and segs == ["namespaces"]:
            return 200, store.upsert("namespaces", self.body())
        if m == "DELETE" and len(segs) == 3 and segs[0] == "pods":
            return 200, store.delete("pods", segs[1] + "/" + segs[2])
        if m == "DELETE" and len(segs) == 2 and segs[0] == "namespaces":
            return 200, store.delete("namespaces", segs[1])
        if m == "POST" and segs == ["compact"]:
            return 200, store.compact()
        if m == "POST" and segs == ["drop-watches"]:
            return 200, {"dropped": store.abort_watches("drop")}
        if m == "POST" and segs == ["expire-watches"]:
            store.compact()
            return 200, {"expired": store.abort_watches("expire")}
        if m == "POST" and segs == ["reset-stats"]:
            with stats.lock:
                open_now = dict(stats.open_watches)
                stats.reset()
                stats.open_watches = open_now
            return 200, {"reset": True}
        raise ApiError(404, "NotFound", "no such control endpoint: %s %s" % (m, self.path))

    def handle_any(self):
        try:
            code, obj = self.dispatch()
            self.reply(code, obj)
        except ApiError as e:
            self.reply(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_DELETE = handle_any


class ControlServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, store, stats):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, ControlHandler)
        self.store, self.stats = store, stats


# ---------------------------------------------------------------------------- main

def host_port(s, what):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise SystemExit("apiserver: %s: expected HOST:PORT, got %r" % (what, s))
    return host.strip("[]"), int(port)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__,
        epilog=CONTROL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                    help="HTTPS address of the API (port 0: any free port, see --port-file)")
    ap.add_argument("--port-file", help="where to write the API port once both ports listen "
                    "(written last: its presence means ready)")
    ap.add_argument("--cert", required=True, help="server certificate chain, PEM")
    ap.add_argument("--key", required=True, help="server private key, PEM")
    ap.add_argument("--token-file", required=True,
                    help="the one accepted bearer token (stripped); re-read on every request")
    ap.add_argument("--control", metavar="HOST:PORT", help="plain-HTTP control interface, loopback only")
    ap.add_argument("--control-port-file", help="where to write the control port")
    ap.add_argument("--state", help="JSON state file: loaded at start, rewritten after every change")
    ap.add_argument("--bookmark-interval", type=float, default=1.0, metavar="SECONDS",
                    help="seconds between BOOKMARK events of a watch that allows them (default 1)")
    ap.add_argument("--max-watch-seconds", type=int, default=1800, metavar="SECONDS",
                    help="how long a watch without timeoutSeconds lasts (default 1800, the real "
                    "server's --min-request-timeout)")
    ap.add_argument("--git-version", default="v1.20.2", help="what /version reports (default v1.20.2)")
    args = ap.parse_args()
    if not re.match(r"^v\d+\.\d+\.\d+", args.git_version):
        ap.error("--git-version must look like v1.20.2")
    if args.bookmark_interval <= 0:
        ap.error("--bookmark-interval must be positive")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])  # no h2: this server speaks HTTP/1.1 only

    store = Store(args.state)
    stats = Stats()
    api = TLSServer(host_port(args.listen, "--listen"), ctx, store, stats, args)
    servers = [api]
    if args.control:
        chost, cport = host_port(args.control, "--control")
        try:
            loopback = ipaddress.ip_address(chost).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise SystemExit("apiserver: --control must be a loopback address (it has no auth)")
        control = ControlServer((chost, cport), store, stats)
        servers.append(control)
        if args.control_port_file:
            write_atomic(args.control_port_file, "%d\n" % control.server_address[1])
        threading.Thread(target=control.serve_forever, name="control", daemon=True).start()
    if args.port_file:
        write_atomic(args.port_file, "%d\n" % api.server_address[1])
    log("API https://%s:%d (RV %d, floor %d)%s" % (
        api.server_address[0], api.server_address[1], store.rv, store.floor,
        ", control http://%s:%d" % servers[1].server_address[:2] if args.control else ""))

    def stop(signum, frame):
        threading.Thread(target=lambda: [s.shutdown() for s in servers], daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    api.serve_forever(poll_interval=0.2)
    for s in servers:
        s.server_close()
    log("stopped")


if __name__ == "__main__":
    main()
