#!/bin/sh
# The node container's start, in an order that never leaves fail-closed rules without a
# daemon behind them:
#   1. validate everything (rules file, node rule options) before touching the node;
#   2. pick the iptables backend the node already uses (legacy or nft);
#   3. start the daemon and wait until it has bound every queue, and (with a pod view)
#      until it has listed the pods, for at most EI_VIEW_TIMEOUT seconds;
#   4. only then apply the node rules; if that fails, remove them and stop.
# The daemon runs as a child so that this script can apply the rules after it is bound;
# signals (TERM, INT, HUP, USR1, USR2) are passed on, and its exit status is ours.
# Every setting comes from the environment the DaemonSet sets.
set -eu
: "${EI_QUEUES:=0-1}" "${EI_PORTS:=80,443}" "${EI_COVERAGE:=all}" "${EI_QUIC:=inspect}"
: "${EI_FAIL:=closed}" "${EI_MODE:=monitor}"
: "${EI_RULES:=/etc/egress-inspector/rules}" "${EI_METRICS:=0.0.0.0:9153}"
: "${EI_LOG_FORMAT:=json}" "${EI_DEST_CHECK:=strict}" "${EI_IPTABLES:=auto}"
: "${EI_START_TIMEOUT:=30}" "${EI_VIEW_TIMEOUT:=15}"
: "${EI_CONTROL:=/run/egress-inspector/control.sock}"

say() { printf '{"event":"entrypoint","%s}\n' "$1" >&2; }

# Options both commands take, so that they always agree; the DNS answer queue is the one
# after EI_QUEUES in both (--dns-queue default).
case "$EI_QUEUES" in
    *-*) QFIRST=${EI_QUEUES%-*} QLAST=${EI_QUEUES#*-} ;;
    *) QFIRST=$EI_QUEUES QLAST=$EI_QUEUES ;;
esac
# EI_PORTS: the TCP ports whose TLS or HTTP is read; EI_COVERAGE=all decides the rest of
# a workload's egress by address entries (inspected: leaves it to a NetworkPolicy);
# EI_QUIC=inspect reads QUIC Initials (block: UDP 443 refused, clients use TCP).
SHARED="--queues $QFIRST-$QLAST --fail $EI_FAIL --ports $EI_PORTS --coverage $EI_COVERAGE --quic $EI_QUIC"
SELECT="--hook forward"
for iface in ${EI_IN_IFACES:-}; do SELECT="$SELECT --in-iface $iface"; done
for cidr in ${EI_SOURCES:-}; do SELECT="$SELECT --source $cidr"; done
RUN="--rules $EI_RULES --mode $EI_MODE --metrics $EI_METRICS --log-format $EI_LOG_FORMAT"
RUN="$RUN --dest-check $EI_DEST_CHECK"
# EI_KUBE: auto (the DaemonSet's: the service account's token, $NODE_NAME's pods), a
# kubeconfig file, or off. While the pods are not listed yet /readyz fails, and a flow
# waits up to EI_WORKLOAD_WAIT ms for its pod (then workload_unknown).
case "${EI_KUBE:-off}" in
    off) ;;
    auto) RUN="$RUN --kube auto" ;;
    *) RUN="$RUN --kubeconfig $EI_KUBE" ;;
esac
[ -n "${EI_WORKLOAD_WAIT:-}" ] && RUN="$RUN --workload-wait $EI_WORKLOAD_WAIT"
# EI_CONTROL: the control socket (0600) that `egress-inspector observe` and `status` read,
# e.g. kubectl exec ds/egress-inspector -- egress-inspector observe --control PATH; off: none.
if [ "$EI_CONTROL" != off ]; then
    mkdir -p "$(dirname "$EI_CONTROL")"
    RUN="$RUN --control $EI_CONTROL"
fi
# EI_RESOLVER: where the daemon's own lookups go (the cluster DNS service address);
# unset, the node's resolv.conf (with dnsPolicy ClusterFirstWithHostNet, cluster DNS).
[ -n "${EI_RESOLVER:-}" ] && RUN="$RUN --resolver $EI_RESOLVER"
# EI_DNS_FROM: the resolvers whose answers teach bindings (space-separated CIDRs: the
# cluster DNS service, node-local DNS). Unset: the daemon's own resolver (EI_RESOLVER,
# else the nameservers of resolv.conf). Answers from any other address are never read.
resolver_address() { # IP, IP:PORT, [IPv6]:PORT or IPv6 -> the address alone
    case "$1" in
        \[*) a=${1#?}; echo "${a%%]*}" ;;
        *:*:*) echo "$1" ;;
        *) echo "${1%%:*}" ;;
    esac
}
if [ -n "${EI_DNS_FROM:-}" ]; then
    DNS_FROM=$EI_DNS_FROM
elif [ -n "${EI_RESOLVER:-}" ]; then
    DNS_FROM=$(resolver_address "$EI_RESOLVER")
else
    DNS_FROM=$(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null)
fi
for r in $DNS_FROM; do SELECT="$SELECT --dns-from $r"; done

# 1. Validate. check-rules prints every error with its line; --print checks the options.
# (SC2086 below: the option lists are split into words on purpose.)
if ! egress-inspector check-rules "$EI_RULES" >&2; then
    say 'outcome":"not_started","why":"the rules file has errors; no node rule applied"'
    exit 2
fi
# shellcheck disable=SC2086
if ! egress-inspector iptables --print $SHARED $SELECT >/dev/null; then
    say 'outcome":"not_started","why":"bad node rule options; no node rule applied"'
    exit 2
fi

# 2. The backend: the one with rules in it already (kube-proxy's, the CNI's), as
# kube-proxy's iptables-wrapper decides; nft when neither has any (Debian's default).
count_rules() { { "iptables-$1-save" 2>/dev/null; "ip6tables-$1-save" 2>/dev/null; } | grep -c '^-A' || true; }
if [ "$EI_IPTABLES" = auto ]; then
    legacy=$(count_rules legacy) nft=$(count_rules nft)
    if [ "$legacy" -gt "$nft" ]; then EI_IPTABLES=legacy; else EI_IPTABLES=nft; fi
    say "backend\":\"$EI_IPTABLES\",\"legacy_rules\":$legacy,\"nft_rules\":$nft"
    if [ "$legacy" -gt 0 ] && [ "$nft" -gt 0 ]; then
        say 'warning":"both iptables backends hold rules; set EI_IPTABLES to the one kube-proxy uses'
    fi
fi
case "$EI_IPTABLES" in
    legacy|nft)
        for t in iptables ip6tables; do
            update-alternatives --quiet --set "$t" "/usr/sbin/$t-$EI_IPTABLES" >/dev/null
        done ;;
    keep) ;; # the image's own alternatives, as they are
    *) say "outcome\":\"not_started\",\"why\":\"EI_IPTABLES=$EI_IPTABLES is not auto, legacy, nft or keep"
       exit 2 ;;
esac

# 3. The daemon, and the wait for its queues (the kernel lists bound queues).
# shellcheck disable=SC2086
egress-inspector run $RUN $SHARED &
pid=$!
for sig in TERM INT HUP USR1 USR2; do trap "kill -$sig $pid 2>/dev/null" "$sig"; done
# exit_if_gone WHAT: a daemon that died before WHAT ends the start, its status ours
exit_if_gone() {
    kill -0 "$pid" 2>/dev/null && return 0
    set +e; wait "$pid"; st=$?; set -e
    say "outcome\":\"not_started\",\"why\":\"the daemon exited ($st) before $1; no node rule applied"
    exit "$st"
}
want=$((QLAST - QFIRST + 2)) # the flow queues and the answer queue
bound() { awk -v a="$QFIRST" -v b="$((QLAST + 1))" '$1 >= a && $1 <= b' \
              /proc/net/netfilter/nfnetlink_queue 2>/dev/null | wc -l; }
waited=0
while [ "$(bound)" -lt "$want" ]; do
    exit_if_gone "binding its queues"
    waited=$((waited + 1))
    if [ "$waited" -gt $((EI_START_TIMEOUT * 10)) ]; then
        say 'outcome":"not_started","why":"the queues were not bound in time; no node rule applied'
        kill -TERM "$pid"; wait "$pid" || true
        exit 1
    fi
    sleep 0.1
done

# 3b. With a pod view, the pods already on the node should be known when their flows
# first meet the queue: wait until the daemon has listed them (its status says
# kube_synced). Past EI_VIEW_TIMEOUT (an API server down or slow) the rules go in all the
# same, fail closed: a flow from a pod not known yet waits EI_WORKLOAD_WAIT ms for it,
# then is denied workload_unknown unless a source CIDR covers it; /readyz says so.
if [ "${EI_KUBE:-off}" != off ] && [ "$EI_CONTROL" != off ]; then
    waited=0
    until egress-inspector status --control "$EI_CONTROL" 2>/dev/null | grep -q '"kube_synced":true'; do
        exit_if_gone "listing the pods"
        waited=$((waited + 1))
        if [ "$waited" -gt $((EI_VIEW_TIMEOUT * 10)) ]; then
            say "warning\":\"the pods were not listed within ${EI_VIEW_TIMEOUT} s; node rules applied: flows of pods not known yet are denied workload_unknown after their wait"
            break
        fi
        sleep 0.1
    done
    [ "$waited" -le $((EI_VIEW_TIMEOUT * 10)) ] && say "view\":\"synced\",\"waited_ms\":$((waited * 100))"
fi

# 4. The node rules, now that packets sent to the queues have a reader.
# shellcheck disable=SC2086
if ! egress-inspector iptables --apply $SHARED $SELECT; then
    egress-inspector iptables --remove || true
    say 'outcome":"not_started","why":"the node rules could not be applied; removed"'
    kill -TERM "$pid"; wait "$pid" || true
    exit 1
fi
say "outcome\":\"started\",\"backend\":\"$EI_IPTABLES\""

# The node rules stay when the daemon stops: with --fail closed, new flows wait for the
# next one (SYN retransmission covers a rolling update).
while :; do
    set +e; wait "$pid"; st=$?; set -e
    kill -0 "$pid" 2>/dev/null || break
done
exit "$st"
