/* `egress-inspector iptables`: the node rules, in chains of our own.
 *
 * filter EGRESS-INSPECTOR (jumped to first from FORWARD and/or OUTPUT), the client's side:
 *   1. a packet carrying the deny mark (sent back by the daemon with NF_REPEAT): save the
 *      mark on its connection, answer its sender with a TCP reset;
 *   2. a client SYN: clear our marks on its connection. A new connection judged afresh
 *      must not inherit an old one's mark when conntrack reuses the entry (it does after
 *      a RST, or a SYN in TIME_WAIT), and a SYN always reaches the queue;
 *   3. later packets of a denied connection: reset;
 *   4. packets of an allowed (settled) connection: leave the chain (they skip the queue);
 *   5. pure ACKs (exact header lengths, no payload possible): leave the chain;
 *   6. workload TCP to the inspected ports: NFQUEUE;
 *   with --coverage all (the default), what the workloads begin beside it:
 *   7. DNS to the named resolvers (by the conntrack entry's original destination; any
 *      resolver when none is named): leave the chain (the DNS chain reads it);
 *   8. TCP to any other port, UDP, ICMP and every other protocol, in the direction of
 *      the connection's start (a pod's replies to its own clients never come here):
 *      NFQUEUE, where the daemon decides it at its first packet by address entries;
 *   9. (forwarded) what conntrack cannot place and is not TCP (an ICMP error that
 *      answers nothing): dropped.
 *   A denied packet that is not TCP is answered with ICMP port unreachable (UDP: a
 *   QUIC client falls back to TCP at once) or dropped.
 * filter EGRESS-INSPECTOR-REPLY (jumped to from FORWARD, and INPUT for --hook output), the
 *   server's side: rules 1, 3 and 4 again, and the server's packets of a plain HTTP
 *   connection (both mark bits: only its client's packets are still judged) leave the
 *   chain; then the server's packets of connections not
 *   settled yet (its SYN-ACK, its acknowledgements, its first bytes; pure ACKs too, since
 *   one of them may be the acknowledgement that settles the flow): NFQUEUE. The daemon
 *   reads the ISN the server took and what it acknowledged: the stream judged must be
 *   the one the server reads. With --quic inspect, the first answer of a QUIC server
 *   (UDP, not DNS's port) to an allowed flow that is not settled yet: NFQUEUE.
 * mangle EGRESS-INSPECTOR-SAVE (jumped to from POSTROUTING): copy the allow mark (or both
 *   bits) of a packet to its connection, which makes rule 4 match from the next packet on.
 * filter EGRESS-INSPECTOR-DNS (jumped to from FORWARD, and INPUT and OUTPUT for the
 *   node's own workloads): the workloads' DNS questions and their answers (UDP and TCP,
 *   port 53) go to the answer queue, where answers are learned from before the workload
 *   gets them, so that a connection can never overtake its own answer, and only when
 *   they answer a question asked. Only a conntrack entry's two directions are queued,
 *   and with --dns-from only those whose original destination is a named resolver
 *   (--ctorigdst: a DNAT in front of the resolver, as kube-proxy makes for the cluster
 *   DNS service, rewrites the question's destination before FORWARD and the answer's
 *   source after it, so the addresses in the packets are the resolver pod's; the
 *   conntrack entry still names the service). Answers from anyone else are never read.
 *   With --queue-bypass: when no daemon listens, DNS passes (the inspector looks names
 *   up itself), and DNS never stops.
 * Every rule names only our mark bits, so kube-proxy's and the CNI's marks are left alone. */
#include "cli/iptables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "egress_inspector/common.h"

static const char CHAIN[] = "EGRESS-INSPECTOR";
static const char SAVE_CHAIN[] = "EGRESS-INSPECTOR-SAVE";
static const char DNS_CHAIN[] = "EGRESS-INSPECTOR-DNS";
static const char REPLY_CHAIN[] = "EGRESS-INSPECTOR-REPLY";

static bool is_v6(const char *cidr)
{
    return strchr(cidr, ':') != NULL;
}

/* The flow queues' target (the balance hash is symmetric: both directions of a flow
 * reach one queue). */
static void queue_target(char *buf, size_t size, const ei_iptables_options *o)
{
    if (o->queue_first == o->queue_last)
        snprintf(buf, size, "-j NFQUEUE --queue-num %u%s", o->queue_first,
                 o->fail_open ? " --queue-bypass" : "");
    else
        snprintf(buf, size, "-j NFQUEUE --queue-balance %u:%u%s", o->queue_first, o->queue_last,
                 o->fail_open ? " --queue-bypass" : "");
}

/* How many CIDRs of the list are of the family. */
static size_t of_family(const char *const *cidrs, size_t n, bool v6)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += is_v6(cidrs[i]) == v6;
    return k;
}

/* Which packets are workload traffic: forwarded ones (pods behind their veths) by
 * interface and/or address; the node's own (OUTPUT, INPUT) by address, and always with a
 * local address, so that one chain serves both hooks without mixing them up. The
 * workload's side is the source of the packets it sends (FROM: -i, -s, --src-type) and
 * the destination of those sent to it (TO: -o, -d, --dst-type). Each is a rule of `chain`
 * ending in `what`. */
typedef enum { FROM_WORKLOAD, TO_WORKLOAD } direction;

static void workload_rules(FILE *f, const ei_iptables_options *o, bool v6, bool forward,
                           direction dir, const char *chain, const char *what)
{
    if (o->nsources > 0 && of_family(o->sources, o->nsources, v6) == 0)
        return;
    static const char *const iface[] = { "-i", "-o" }, *const addr[] = { "-s", "-d" },
                             *const local[] = { "src", "dst" };
    size_t nif = forward ? o->niifaces : 0;
    for (size_t i = 0; i < (nif ? nif : 1); i++)
        for (size_t s = 0; s < (o->nsources ? o->nsources : 1); s++) {
            if (o->nsources > 0 && is_v6(o->sources[s]) != v6)
                continue;
            fprintf(f, "-A %s", chain);
            if (nif)
                fprintf(f, " %s %s", iface[dir], o->iifaces[i]);
            else
                fprintf(f, " -m addrtype %s--%s-type LOCAL", forward ? "! " : "", local[dir]);
            if (o->nsources > 0)
                fprintf(f, " %s %s", addr[dir], o->sources[s]);
            fprintf(f, " %s\n", what);
        }
}

/* The dport match of the inspected ports ("" for every port). */
static void ports_match(char *buf, size_t size, const char *dir, const ei_iptables_options *o)
{
    if (o->ports == NULL)
        buf[0] = '\0';
    else
        snprintf(buf, size, " -m multiport --%s %s", dir, o->ports);
}

static void queue_rules(FILE *f, const ei_iptables_options *o, bool v6, bool forward)
{
    char target[80], ports[120], what[300];
    queue_target(target, sizeof target, o);
    ports_match(ports, sizeof ports, "dports", o);
    snprintf(what, sizeof what, "-p tcp%s %s", ports, target);
    workload_rules(f, o, v6, forward, FROM_WORKLOAD, CHAIN, what);
    if (o->coverage_inspected && o->quic_inspect) {
        snprintf(what, sizeof what, "-p udp --dport 443 -m conntrack --ctdir ORIGINAL %s", target);
        workload_rules(f, o, v6, forward, FROM_WORKLOAD, CHAIN, what);
    }
    if (o->coverage_inspected)
        return;
    /* DNS to a named resolver is the DNS chain's (or free, with no DNS queue). */
    static const char *const protos[] = { "udp", "tcp" };
    for (size_t r = 0; r < (o->ndns_from ? o->ndns_from : 1); r++) {
        if (o->ndns_from > 0 && is_v6(o->dns_from[r]) != v6)
            continue;
        for (size_t p = 0; p < 2; p++) {
            if (o->ndns_from > 0)
                snprintf(what, sizeof what, "-p %s --dport 53 -m conntrack --ctdir ORIGINAL "
                         "--ctorigdst %s -j RETURN", protos[p], o->dns_from[r]);
            else
                snprintf(what, sizeof what, "-p %s --dport 53 -m conntrack --ctdir ORIGINAL -j RETURN",
                         protos[p]);
            workload_rules(f, o, v6, forward, FROM_WORKLOAD, CHAIN, what);
        }
    }
    snprintf(what, sizeof what, "-m conntrack --ctdir ORIGINAL %s", target);
    workload_rules(f, o, v6, forward, FROM_WORKLOAD, CHAIN, what);
    if (forward)
        workload_rules(f, o, v6, forward, FROM_WORKLOAD, CHAIN,
                       "! -p tcp -m conntrack --ctstate INVALID -j DROP");
}

/* The answers to the workloads and their questions, for each named resolver of the
 * family, or any when none is named. */
static void dns_rules(FILE *f, const ei_iptables_options *o, bool v6, bool forward)
{
    static const char *const protos[] = { "udp", "tcp" };
    if (o->ndns_from > 0 && of_family(o->dns_from, o->ndns_from, v6) == 0)
        return; /* no resolver of this family is named: no answer of it teaches */
    for (size_t r = 0; r < (o->ndns_from ? o->ndns_from : 1); r++) {
        if (o->ndns_from > 0 && is_v6(o->dns_from[r]) != v6)
            continue;
        char orig[80] = "";
        if (o->ndns_from > 0)
            snprintf(orig, sizeof orig, " --ctorigdst %s", o->dns_from[r]);
        for (size_t p = 0; p < 2; p++) {
            char what[200];
            snprintf(what, sizeof what, "-p %s --sport 53 -m conntrack --ctdir REPLY%s -j NFQUEUE "
                     "--queue-num %d --queue-bypass", protos[p], orig, o->dns_queue);
            workload_rules(f, o, v6, forward, TO_WORKLOAD, DNS_CHAIN, what);
            snprintf(what, sizeof what, "-p %s --dport 53 -m conntrack --ctdir ORIGINAL%s -j NFQUEUE "
                     "--queue-num %d --queue-bypass", protos[p], orig, o->dns_queue);
            workload_rules(f, o, v6, forward, FROM_WORKLOAD, DNS_CHAIN, what);
        }
    }
}

/* The server's packets of connections not settled yet (rules 1, 3 and 4 of the reply
 * chain have let the others go): from the inspected ports, in the reply direction. */
static void reply_rules(FILE *f, const ei_iptables_options *o, bool v6, bool forward)
{
    char target[80], ports[120], what[300];
    queue_target(target, sizeof target, o);
    ports_match(ports, sizeof ports, "sports", o);
    snprintf(what, sizeof what, "-p tcp%s -m conntrack --ctdir REPLY %s", ports, target);
    workload_rules(f, o, v6, forward, TO_WORKLOAD, REPLY_CHAIN, what);
    if (!o->quic_inspect)
        return;
    /* An allowed QUIC flow stays unmarked until its server answers: that answer. (The
     * only other unmarked UDP exchanges are DNS to the named resolvers.) */
    snprintf(what, sizeof what, "-p udp %s -m conntrack --ctdir REPLY %s",
             o->coverage_inspected ? "--sport 443" : "! --sport 53", target);
    workload_rules(f, o, v6, forward, TO_WORKLOAD, REPLY_CHAIN, what);
}

/* What a denied packet meets: TCP a reset, UDP an ICMP port unreachable, the rest a drop.
 * `match` is "mark" (the daemon's verdict) or "connmark" (its connection's). */
static void deny_rules(FILE *f, const ei_iptables_options *o, bool v6, const char *chain,
                       const char *match)
{
    uint32_t mask = o->mark_allow | o->mark_deny;
    fprintf(f, "-A %s -p tcp -m %s --mark 0x%x/0x%x -j REJECT --reject-with tcp-reset\n",
            chain, match, o->mark_deny, mask);
    fprintf(f, "-A %s -p udp -m %s --mark 0x%x/0x%x -j REJECT --reject-with %s\n", chain, match,
            o->mark_deny, mask, v6 ? "icmp6-port-unreachable" : "icmp-port-unreachable");
    fprintf(f, "-A %s -m %s --mark 0x%x/0x%x -j DROP\n", chain, match, o->mark_deny, mask);
}

/* Rules 1, 3 and 4: what the marks already decided. */
static void mark_rules(FILE *f, const ei_iptables_options *o, bool v6, const char *chain,
                       bool clear_on_syn)
{
    uint32_t mask = o->mark_allow | o->mark_deny;
    fprintf(f, "-A %s -m mark --mark 0x%x/0x%x -j CONNMARK --save-mark --nfmask 0x%x --ctmask 0x%x\n",
            chain, o->mark_deny, mask, mask, mask);
    deny_rules(f, o, v6, chain, "mark");
    if (clear_on_syn)
        fprintf(f, "-A %s -p tcp --syn -j CONNMARK --set-xmark 0x0/0x%x\n", chain, mask);
    deny_rules(f, o, v6, chain, "connmark");
    fprintf(f, "-A %s -m connmark --mark 0x%x/0x%x -j RETURN\n", chain, o->mark_allow, mask);
    fprintf(f, "-A %s -m mark --mark 0x%x/0x%x -j RETURN\n", chain, o->mark_allow, mask);
}

/* The rule set for one address family, in iptables-restore format. */
static void write_family(FILE *f, const ei_iptables_options *o, bool v6)
{
    uint32_t mask = o->mark_allow | o->mark_deny;
    fprintf(f, "*filter\n:%s - [0:0]\n", CHAIN);
    mark_rules(f, o, v6, CHAIN, true);

    /* Segments that provably carry no payload (pure ACKs: a 20-byte IP header, or a bare
     * IPv6 header with TCP next, and a TCP header of exactly the packet's remaining
     * length) cannot name anything, so they skip the queue; SYN, FIN and RST still go,
     * since they open and close flows. Exact lengths only: padding cannot slip a byte by. */
    static const char *const empty4[] = { "0>>22&0x3C=20&&0&0xFFFF=40&&32>>28=5",
                                          "0>>22&0x3C=20&&0&0xFFFF=52&&32>>28=8" };
    static const char *const empty6[] = { "4>>16=20&&6>>8&0xFF=6&&52>>28=5",
                                          "4>>16=32&&6>>8&0xFF=6&&52>>28=8" };
    for (size_t i = 0; i < 2; i++)
        fprintf(f, "-A %s -p tcp --tcp-flags SYN,FIN,RST NONE -m u32 --u32 \"%s\" -j RETURN\n",
                CHAIN, v6 ? empty6[i] : empty4[i]);
    for (int hook = 0; hook < 2; hook++)
        if (hook == 0 ? o->hook_forward : o->hook_output)
            queue_rules(f, o, v6, hook == 0);
    fprintf(f, ":%s - [0:0]\n", REPLY_CHAIN);
    mark_rules(f, o, v6, REPLY_CHAIN, false);
    fprintf(f, "-A %s -m connmark --mark 0x%x/0x%x -j RETURN\n", REPLY_CHAIN, mask, mask);
    for (int hook = 0; hook < 2; hook++)
        if (hook == 0 ? o->hook_forward : o->hook_output)
            reply_rules(f, o, v6, hook == 0);
    if (o->dns_queue >= 0) {
        fprintf(f, ":%s - [0:0]\n", DNS_CHAIN);
        for (int hook = 0; hook < 2; hook++)
            if (hook == 0 ? o->hook_forward : o->hook_output)
                dns_rules(f, o, v6, hook == 0);
    }
    fputs("COMMIT\n", f);
    fprintf(f, "*mangle\n:%s - [0:0]\n", SAVE_CHAIN);
    fprintf(f, "-A %s -m mark --mark 0x%x/0x%x -j CONNMARK --save-mark --nfmask 0x%x --ctmask 0x%x\n",
            SAVE_CHAIN, o->mark_allow, mask, mask, mask);
    fprintf(f, "-A %s -m mark --mark 0x%x/0x%x -j CONNMARK --save-mark --nfmask 0x%x --ctmask 0x%x\n",
            SAVE_CHAIN, mask, mask, mask, mask);
    fputs("COMMIT\n", f);
}

void ei_iptables_print(FILE *f, const ei_iptables_options *o)
{
    fputs("# egress-inspector node rules, IPv4 (iptables-restore --noflush)\n", f);
    write_family(f, o, false);
    fputs("# egress-inspector node rules, IPv6 (ip6tables-restore --noflush)\n", f);
    write_family(f, o, true);
    fputs("# jumps: FORWARD/OUTPUT -> EGRESS-INSPECTOR (first), FORWARD/INPUT -> EGRESS-INSPECTOR-REPLY,\n"
          "#        mangle POSTROUTING -> EGRESS-INSPECTOR-SAVE\n", f);
    if (o->dns_queue >= 0)
        fputs("# jumps: FORWARD (and INPUT and OUTPUT for --hook output) -> EGRESS-INSPECTOR-DNS (first)\n", f);
}

/* Runs a command without a shell; returns its exit status (127 if it could not run). */
static int run(const char *const argv[], const char *stdin_text, bool quiet)
{
    int pipefd[2] = { -1, -1 };
    if (stdin_text != NULL && pipe(pipefd) < 0)
        return 127;
    pid_t pid = fork();
    if (pid < 0)
        return 127;
    if (pid == 0) {
        if (stdin_text != NULL) {
            dup2(pipefd[0], STDIN_FILENO);
            close(pipefd[0]);
            close(pipefd[1]);
        }
        if (quiet) {
            FILE *null = freopen("/dev/null", "w", stderr);
            (void)null;
        }
        char *args[16];
        size_t n = 0;
        for (; n < 15 && argv[n] != NULL; n++) {
            args[n] = strdup(argv[n]); /* execvp wants them writable */
            if (args[n] == NULL)
                _exit(127);
        }
        args[n] = NULL;
        execvp(args[0], args);
        _exit(127);
    }
    if (stdin_text != NULL) {
        close(pipefd[0]);
        size_t len = strlen(stdin_text), off = 0;
        while (off < len) {
            ssize_t n = write(pipefd[1], stdin_text + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(pipefd[1]);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

/* Deletes every jump from a built-in chain to ours (there may be several after a crash). */
static void remove_jumps(const char *tool, const char *table, const char *from, const char *to)
{
    const char *argv[] = { tool, "-w", "-t", table, "-D", from, "-j", to, NULL };
    for (int i = 0; i < 16 && run(argv, NULL, true) == 0; i++)
        continue;
}

static void remove_all_jumps(const char *tool)
{
    remove_jumps(tool, "filter", "FORWARD", CHAIN);
    remove_jumps(tool, "filter", "OUTPUT", CHAIN);
    remove_jumps(tool, "filter", "FORWARD", DNS_CHAIN);
    remove_jumps(tool, "filter", "INPUT", DNS_CHAIN);
    remove_jumps(tool, "filter", "OUTPUT", DNS_CHAIN);
    remove_jumps(tool, "filter", "FORWARD", REPLY_CHAIN);
    remove_jumps(tool, "filter", "INPUT", REPLY_CHAIN);
    remove_jumps(tool, "mangle", "POSTROUTING", SAVE_CHAIN);
}

static void remove_family(const char *tool)
{
    remove_all_jumps(tool);
    const char *chains[][2] = { { "filter", CHAIN }, { "mangle", SAVE_CHAIN }, { "filter", DNS_CHAIN },
                                { "filter", REPLY_CHAIN } };
    for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
        const char *flush[] = { tool, "-w", "-t", chains[i][0], "-F", chains[i][1], NULL };
        const char *del[] = { tool, "-w", "-t", chains[i][0], "-X", chains[i][1], NULL };
        run(flush, NULL, true);
        run(del, NULL, true);
    }
}

static int apply_family(const ei_iptables_options *o, bool v6)
{
    const char *tool = v6 ? "ip6tables" : "iptables";
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return 1;
    write_family(f, o, v6);
    fclose(f);
    remove_all_jumps(tool);
    if (o->dns_queue < 0) { /* an earlier apply may have made it */
        const char *flush[] = { tool, "-w", "-F", DNS_CHAIN, NULL };
        const char *del[] = { tool, "-w", "-X", DNS_CHAIN, NULL };
        run(flush, NULL, true);
        run(del, NULL, true);
    }
    const char *restore[] = { v6 ? "ip6tables-restore" : "iptables-restore", "-w", "--noflush", NULL };
    int rc = run(restore, text, false);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "egress-inspector: %s-restore failed (exit %d)\n", tool, rc);
        return 1;
    }
    /* Inserted at 1 in turn: the last one inserted is the first that runs. */
    if (o->hook_forward) {
        const char *reply[] = { tool, "-w", "-I", "FORWARD", "1", "-j", REPLY_CHAIN, NULL };
        const char *argv[] = { tool, "-w", "-I", "FORWARD", "1", "-j", CHAIN, NULL };
        rc |= run(reply, NULL, false);
        rc |= run(argv, NULL, false);
    }
    if (o->hook_output) {
        const char *reply[] = { tool, "-w", "-I", "INPUT", "1", "-j", REPLY_CHAIN, NULL };
        rc |= run(reply, NULL, false);
    }
    if (o->hook_output) {
        const char *argv[] = { tool, "-w", "-I", "OUTPUT", "1", "-j", CHAIN, NULL };
        rc |= run(argv, NULL, false);
    }
    if (o->dns_queue >= 0 && o->hook_forward) {
        const char *argv[] = { tool, "-w", "-I", "FORWARD", "1", "-j", DNS_CHAIN, NULL };
        rc |= run(argv, NULL, false);
    }
    if (o->dns_queue >= 0 && o->hook_output) { /* answers come in, questions go out */
        const char *in[] = { tool, "-w", "-I", "INPUT", "1", "-j", DNS_CHAIN, NULL };
        const char *out[] = { tool, "-w", "-I", "OUTPUT", "1", "-j", DNS_CHAIN, NULL };
        rc |= run(in, NULL, false);
        rc |= run(out, NULL, false);
    }
    const char *save[] = { tool, "-w", "-t", "mangle", "-I", "POSTROUTING", "1", "-j", SAVE_CHAIN, NULL };
    rc |= run(save, NULL, false);
    return rc != 0;
}

int ei_iptables_apply(const ei_iptables_options *o)
{
    if (apply_family(o, false) != 0 || apply_family(o, true) != 0)
        return 1;
    return 0;
}

int ei_iptables_remove(void)
{
    remove_family("iptables");
    remove_family("ip6tables");
    return 0;
}
