"""A small HTTP server on a loopback port whose answers a test scripts per path prefix:
a FHIR server that misbehaves (slow drip, huge body, 500 with a marker text, redirects,
next links to elsewhere) or a foreign host that must never be contacted. Every request
is recorded with its path and headers."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes = b""


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=lambda: {"Content-Type": "application/fhir+json"})
    drip_s: float = 0.0            # seconds between single bytes of the body
    repeat: int = 1                # the body is sent this many times (a huge answer without the memory)


class HostileServer:
    def __init__(self, upstream: str | None = None) -> None:
        # With `upstream`, requests no route answers are forwarded there (a faulty proxy in
        # front of a real FHIR server); a route may forward first and then answer anyway.
        self.upstream = upstream
        self.seen: list[Seen] = []
        self.routes: list[tuple[str, Callable[[str], Answer]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server API
                outer._answer(self)

            do_POST = do_PUT = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def route(self, prefix: str, answer: Callable[[str], Answer] | Answer) -> None:
        self.routes.insert(0, (prefix, answer if callable(answer) else (lambda _path, a=answer: a)))

    def forward(self, seen: Seen, body: bytes) -> Answer:
        import requests
        headers = {k: v for k, v in seen.headers.items()
                   if k.lower() in ("content-type", "accept", "if-none-exist", "prefer", "if-match")}
        path = seen.path[len("/fhir"):] if seen.path.startswith("/fhir") else seen.path
        r = requests.request(seen.method, self.upstream + path, data=body or None, headers=headers, timeout=60)
        return Answer(r.status_code, r.content, {"Content-Type": r.headers.get("Content-Type", "application/json")})

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        seen = Seen(handler.command, handler.path, dict(handler.headers))
        self.seen.append(seen)
        seen.body = body
        answer = next((make(handler.path) for prefix, make in self.routes if handler.path.startswith(prefix)), None)
        if answer is None:
            answer = (self.forward(seen, body) if self.upstream
                      else Answer(404, b'{"resourceType":"OperationOutcome","issue":[]}'))
        try:
            handler.send_response(answer.status)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(answer.body) * answer.repeat))
            handler.end_headers()
            if answer.drip_s:
                for i in range(len(answer.body)):
                    handler.wfile.write(answer.body[i:i + 1])
                    handler.wfile.flush()
                    time.sleep(answer.drip_s)
            else:
                for _ in range(answer.repeat):
                    handler.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass                        # the service hung up on us, as it should

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
