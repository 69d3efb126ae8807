#!/usr/bin/python3
"""The internet side of the end-to-end tests: a TLS server whose certificate names several
hosts, an HTTP server, and a plain TCP service, all dual-stack. Runs until killed.
Usage: servers.py CERT KEY"""
import http.server, socket, socketserver, ssl, sys, threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"hello {self.headers.get('Host', '-')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class DualStack:
    """Listens on IPv6 and IPv4 at once (one socket, V6ONLY off), one thread per client."""
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Server(DualStack, socketserver.ThreadingMixIn, http.server.HTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that the inspector resets are expected here


class TLSServer(Server):
    """The handshake runs in each connection's own thread: a client that was reset before
    its ClientHello reached us (a denied flow) must not block the next one."""

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        self.RequestHandlerClass(tls, client_address, self)


def serve_tls(cert, key):
    srv = TLSServer(("::", 443), Handler)
    srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.ctx.load_cert_chain(cert, key)
    srv.serve_forever()


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            self.request.sendall(b"SSH-2.0-e2e\r\n")
            data = self.request.recv(1024)
            if data:
                self.request.sendall(b"echo " + data)
        except OSError:
            pass  # a client that only checks the port is up


class EchoServer(DualStack, socketserver.ThreadingTCPServer):
    pass


threading.Thread(target=serve_tls, args=(sys.argv[1], sys.argv[2]), daemon=True).start()
threading.Thread(target=Server(("::", 80), Handler).serve_forever, daemon=True).start()
threading.Thread(target=EchoServer(("::", 22), Echo).serve_forever, daemon=True).start()
threading.Event().wait()
