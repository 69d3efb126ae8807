"""The QUIC form of 'judge one thing, deliver another': from one UDP socket (one 5-tuple),
an Initial for ALLOWED with connection ID A (which a rule after the node drops, as a loss
past the node would), then an Initial for DENIED with connection ID B. A server that never
saw A takes B as the connection's start. Also the recorder on the server's side, which
writes the connection ID of every datagram it receives.
Usage: quic_lost.py send PCAPS_DIR ADDR ALLOWED DENIED | quic_lost.py record ADDR LOG"""
import socket
import sys
import time

if sys.argv[1] == "record":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[2], 443))
    with open(sys.argv[3], "a", buffering=1) as log:
        log.write("ready\n")
        while True:
            d, peer = s.recvfrom(65535)
            if len(d) > 6 and d[0] & 0x80:
                log.write(d[6:6 + d[5]].hex() + "\n")
else:
    sys.path.insert(0, sys.argv[2])
    import craft  # noqa: E402
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((sys.argv[3], 443))
    for dcid, name in ((b"A" * 8, sys.argv[4]), (b"B" * 8, sys.argv[5])):
        try:
            s.send(craft.quic_initial(dcid, 0, craft.crypto_frame(0, craft.client_hello(names=(name.encode(),)))))
        except ConnectionRefusedError:
            print("refused", file=sys.stderr)  # the port unreachable of a denied datagram
        time.sleep(0.3)
