"""One client Initial for NAME to ADDR:443 from a connected UDP socket: prints the
milliseconds until the ICMP port unreachable came back (ECONNREFUSED), "answer" when the
server answered, or "none" within 2 s. The Initial is tests/pcaps/craft.py's.
Usage: quic_refused.py PCAPS_DIR NAME ADDR"""
import socket
import sys
import time

sys.path.insert(0, sys.argv[1])
import craft  # noqa: E402

dgram = craft.quic_initial(bytes(range(1, 9)), 0,
                           craft.crypto_frame(0, craft.client_hello(names=(sys.argv[2].encode(),))))
family = socket.AF_INET6 if ":" in sys.argv[3] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[3], 443))
t0 = time.monotonic()
s.send(dgram)
try:
    s.recv(2048)
    print("answer")
except ConnectionRefusedError:
    print(int((time.monotonic() - t0) * 1000))
except socket.timeout:
    print("none")
