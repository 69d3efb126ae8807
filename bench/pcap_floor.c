/* The floor for replay throughput: a bare libpcap read loop that hands every packet to
 * nobody. Anything that reads a capture through libpcap costs at least this much, so
 * "replay / floor" says how much of replay's time is the pipeline itself.
 *
 * Usage: pcap_floor CAPTURE      prints {"packets":N,"bytes":N} on stdout.
 *
 * The caplen sum is printed so that the loop has an observable result (and so that the
 * byte count can be checked against the generator's). */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CAPTURE\n", argv[0]);
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(argv[1], errbuf);
    if (pc == NULL) {
        fprintf(stderr, "pcap_floor: %s: %s\n", argv[1], errbuf);
        return 2;
    }
    struct pcap_pkthdr *hdr;
    const u_char *data;
    uint64_t packets = 0, bytes = 0;
    int rv;
    while ((rv = pcap_next_ex(pc, &hdr, &data)) == 1) {
        packets++;
        bytes += hdr->caplen;
    }
    if (rv == PCAP_ERROR) {
        fprintf(stderr, "pcap_floor: %s: %s\n", argv[1], pcap_geterr(pc));
        pcap_close(pc);
        return 2;
    }
    pcap_close(pc);
    printf("{\"packets\":%llu,\"bytes\":%llu}\n", (unsigned long long)packets,
           (unsigned long long)bytes);
    return 0;
}
