"""An HTTP proxy on loopback that forwards requests to a real server and, when told to, drops the answer:
the server has done the work (and committed), but the client sees the connection close with no reply."""

from __future__ import annotations

import http.client
import socket
import socketserver
import threading
from collections.abc import Callable
from urllib.parse import urlsplit


def read_request(rfile) -> tuple[str, str, dict[str, str], bytes] | None:
    """One HTTP/1.1 request off a socket file: method, path, headers and body (None on a closed connection)."""
    request_line = rfile.readline()
    if not request_line:
        return None
    method, path, _ = request_line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (line := rfile.readline()) not in (b"\r\n", b"\n", b""):
        name, value = line.decode().split(":", 1)
        headers[name.strip()] = value.strip()
    return method, path, headers, rfile.read(int(headers.get("Content-Length", "0")))


class LossyProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.drop_when: Callable[[bytes], bool] = lambda body: False
        self.drops_left = 0
        self.dropped: list[bytes] = []
        self.forwarded = 0
        self.seen: list[bytes] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = read_request(self.rfile)
                if request is None:
                    return
                method, path, headers, body = request
                proxy.seen.append(body)
                upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                forward = {k: v for k, v in headers.items() if k.lower() not in ("connection", "keep-alive")}
                upstream.request(method, path, body=body, headers=forward)
                response = upstream.getresponse()
                payload = response.read()
                proxy.forwarded += 1
                if proxy.drops_left > 0 and proxy.drop_when(body):
                    proxy.drops_left -= 1
                    proxy.dropped.append(body)
                    self.connection.shutdown(socket.SHUT_RDWR)  # the server answered; the client never hears
                    return
                self.wfile.write(f"HTTP/1.1 {response.status} {response.reason}\r\n".encode())
                for name, value in response.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.wfile.write(f"{name}: {value}\r\n".encode())
                self.wfile.write(f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode())
                self.wfile.write(payload)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def drop_next(self, count: int, when: Callable[[bytes], bool]) -> None:
        self.drops_left = count
        self.drop_when = when

    def __enter__(self) -> "LossyProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
