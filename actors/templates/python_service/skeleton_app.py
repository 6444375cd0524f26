"""__TITLE__ — scaffolded by artel. Serves GET /health until the Developer fills it in.

Run: PORT=8000 python3 app.py    Test: python3 -m unittest -v
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s %s\n" % (self.command, self.path))

    def do_GET(self):
        if self.path == "/health":
            status, payload = 200, {"status": "ok"}
        else:
            status, payload = 404, {"error": {"code": "not_found", "message": "not built yet"}}
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def make_server(port, host="127.0.0.1", quiet=False):
    """The service on host:port (0 picks a free port); quiet drops the per-request log line."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.quiet = quiet
    return server


if __name__ == "__main__":
    if not os.environ.get("PORT"):
        sys.stderr.write("refusing to start: set PORT\n")
        sys.exit(2)
    make_server(int(os.environ["PORT"]), os.environ.get("HOST", "127.0.0.1")).serve_forever()
