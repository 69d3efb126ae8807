#!/bin/sh
# Applies the node rules, then runs the daemon in their place (exec: signals reach it).
# The rules stay when the daemon stops: with --fail closed, new flows then wait for it.
# Every setting comes from the environment the DaemonSet sets.
set -eu
: "${EI_QUEUES:=0-1}" "${EI_PORTS:=80,443}" "${EI_FAIL:=closed}" "${EI_MODE:=monitor}"
: "${EI_RULES:=/etc/egress-inspector/rules}" "${EI_METRICS:=0.0.0.0:9153}"
: "${EI_LOG_FORMAT:=json}" "${EI_DEST_CHECK:=strict}"
# The DNS answer queue is the one after EI_QUEUES in both commands (--dns-queue default).
set -- --queues "$EI_QUEUES" --fail "$EI_FAIL"
for iface in ${EI_IN_IFACES:-}; do set -- "$@" --in-iface "$iface"; done
for cidr in ${EI_SOURCES:-}; do set -- "$@" --source "$cidr"; done
egress-inspector iptables --apply --hook forward --ports "$EI_PORTS" "$@"
# EI_RESOLVER: where the daemon's own lookups go (the cluster DNS service address);
# unset, the node's resolv.conf (with dnsPolicy ClusterFirstWithHostNet, cluster DNS).
[ -n "${EI_RESOLVER:-}" ] && set -- "$@" --resolver "$EI_RESOLVER"
exec egress-inspector run --rules "$EI_RULES" --mode "$EI_MODE" --metrics "$EI_METRICS" \
    --log-format "$EI_LOG_FORMAT" --dest-check "$EI_DEST_CHECK" "$@"
