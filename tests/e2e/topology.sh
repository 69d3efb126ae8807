# Sourced by the end-to-end tests: builds pod -> node -> internet network namespaces with
# names unique to this run, and removes them on exit (also when a test fails).
#   pod  (10.244.0.10, fd00:10:244::10)   pod2 (10.244.7.10, fd00:10:244:7::10)
#   node: routes between them, runs the daemon and the node rules (FORWARD, as on a k8s node)
#   net  (203.0.113.10, 203.0.113.20, 203.0.113.250, 2001:db8::10, 2001:db8::20, 2001:db8::250)
set -euo pipefail
EI_TAG=${EI_TAG:-ei$$}
NS_POD=${EI_TAG}-pod NS_POD2=${EI_TAG}-pod2 NS_NODE=${EI_TAG}-node NS_NET=${EI_TAG}-net
EI_PIDS=()

topology_cleanup() {
    # every process started inside our namespaces, however it was started
    for ns in "$NS_POD" "$NS_POD2" "$NS_NODE" "$NS_NET"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    done
    for pid in "${EI_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
    # names first: a process that lingers must not keep them around
    for ns in "$NS_POD" "$NS_POD2" "$NS_NODE" "$NS_NET"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "/etc/netns/$NS_POD" # pod_dns_up's resolv.conf
    wait 2>/dev/null || true
}
trap topology_cleanup EXIT
trap 'exit 130' INT TERM

in_pod() { ip netns exec "$NS_POD" "$@"; }
in_pod2() { ip netns exec "$NS_POD2" "$@"; }
in_node() { ip netns exec "$NS_NODE" "$@"; }
in_net() { ip netns exec "$NS_NET" "$@"; }

topology_up() {
    for ns in "$NS_POD" "$NS_POD2" "$NS_NODE" "$NS_NET"; do
        [ -e "/run/netns/$ns" ] || ip netns add "$ns" # the node may be a container's, attached
        ip -n "$ns" link set lo up
    done
    # veth names are per namespace; the node side of pods is "veth-pod*", as a CNI names them
    ip link add veth-pod netns "$NS_NODE" type veth peer name eth0 netns "$NS_POD"
    ip link add veth-pod2 netns "$NS_NODE" type veth peer name eth0 netns "$NS_POD2"
    ip link add uplink netns "$NS_NODE" type veth peer name eth0 netns "$NS_NET"
    for ns in "$NS_POD" "$NS_POD2" "$NS_NET"; do ip -n "$ns" link set eth0 up; done
    for l in veth-pod veth-pod2 uplink; do ip -n "$NS_NODE" link set "$l" up; done

    ip -n "$NS_POD" addr add 10.244.0.10/24 dev eth0
    ip -n "$NS_POD" addr add fd00:10:244::10/64 dev eth0 nodad
    ip -n "$NS_POD" route add default via 10.244.0.1
    ip -n "$NS_POD" -6 route add default via fd00:10:244::1
    ip -n "$NS_POD2" addr add 10.244.7.10/24 dev eth0
    ip -n "$NS_POD2" addr add fd00:10:244:7::10/64 dev eth0 nodad
    ip -n "$NS_POD2" route add default via 10.244.7.1
    ip -n "$NS_POD2" -6 route add default via fd00:10:244:7::1
    ip -n "$NS_NODE" addr add 10.244.0.1/24 dev veth-pod
    ip -n "$NS_NODE" addr add fd00:10:244::1/64 dev veth-pod nodad
    ip -n "$NS_NODE" addr add 10.244.7.1/24 dev veth-pod2
    ip -n "$NS_NODE" addr add fd00:10:244:7::1/64 dev veth-pod2 nodad
    ip -n "$NS_NODE" addr add 192.0.2.1/24 dev uplink
    ip -n "$NS_NODE" addr add 2001:db8:ffff::1/64 dev uplink nodad
    in_node sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    for a in 203.0.113.10/24 203.0.113.20/24 203.0.113.250/24 192.0.2.2/24; do
        ip -n "$NS_NET" addr add "$a" dev eth0
    done
    for a in 2001:db8::10/64 2001:db8::20/64 2001:db8::250/64 2001:db8:ffff::2/64; do
        ip -n "$NS_NET" addr add "$a" dev eth0 nodad
    done
    ip -n "$NS_NET" route add 10.244.0.0/16 via 192.0.2.1
    ip -n "$NS_NET" -6 route add fd00:10:244::/48 via 2001:db8:ffff::1
    ip -n "$NS_NODE" route add 203.0.113.0/24 via 192.0.2.2
    ip -n "$NS_NODE" -6 route add 2001:db8::/64 via 2001:db8:ffff::2
}

# ---- what every end-to-end test needs besides the namespaces ----

PASSED=0 FAILED=0
# keep_logs RC PREFIX FILE...: after a failure (a failed check, or RC != 0), copies each
# FILE of $WORK to $EI_E2E_KEEP (default /tmp) as PREFIX-FILE, for a look.
keep_logs() {
    local rc=$1 prefix=$2 dir=${EI_E2E_KEEP:-/tmp} f
    shift 2
    [ "${FAILED:-0}" != 0 ] || [ "$rc" != 0 ] || return 0
    for f in "$@"; do cp "$WORK/$f" "$dir/$prefix-$f" 2>/dev/null || true; done
    echo "logs kept in $dir/$prefix-{$(IFS=,; echo "$*")}"
}

check() { # check NAME COMMAND... : the command must succeed
    local name=$1; shift
    if "$@"; then PASSED=$((PASSED + 1)); echo "ok   $name"
    else FAILED=$((FAILED + 1)); echo "FAIL $name"; fi
}
not() { ! "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The pod's resolver is 203.0.113.53 in the internet namespace (its DNS server is the
# test's to start); /etc/netns/POD/resolv.conf is what `ip netns exec` mounts for it.
pod_dns_up() {
    ip -n "$NS_NET" addr add 203.0.113.53/24 dev eth0
    mkdir -p "/etc/netns/$NS_POD"
    printf 'nameserver 203.0.113.53\noptions timeout:2 attempts:1\n' > "/etc/netns/$NS_POD/resolv.conf"
}

# make_cert DIR NAME...: a self-signed P-256 certificate for the names (the first is the
# subject), DIR/cert.pem and DIR/key.pem.
make_cert() {
    local dir=$1; shift
    local san="" n
    for n in "$@"; do san="${san:+$san,}DNS:$n"; done
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
        -addext "subjectAltName=$san" -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
}

# The internet's servers (tests/e2e/servers.py), with the certificate of make_cert.
start_servers() { # start_servers DIR
    in_net /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/servers.py" "$1/cert.pem" "$1/key.pem" &
    EI_PIDS+=($!)
}
