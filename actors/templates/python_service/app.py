"""__TITLE__ — a JSON API over HTTP, written by artel's template agent.

Standard library only. Configuration comes from the environment:
  PORT        TCP port to listen on (required)
  HOST        address to bind (default 127.0.0.1)
  DATA_FILE   JSON file the data is kept in (default ./data.json)
__ENV_DOC__
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

RESOURCE = json.loads(r'''__RESOURCE_JSON__''')
REQUIRED_ENV = json.loads(r'''__REQUIRED_ENV_JSON__''')
MAX_BODY = 1024 * 1024


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Store:
    """Items by id, kept in one JSON file, written atomically after every change."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.items = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.items = json.load(f)
        if not isinstance(self.items, dict):
            raise ValueError("%s does not hold a JSON object" % path)

    def _save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.items, f)
        os.replace(tmp, self.path)

    # Callers get copies: a response is serialized outside the lock.
    def list(self):
        with self.lock:
            return [dict(item) for item in self.items.values()]

    def get(self, item_id):
        with self.lock:
            item = self.items.get(item_id)
            return None if item is None else dict(item)

    def create(self, fields):
        with self.lock:
            item_id = secrets.token_urlsafe(6)
            while item_id in self.items:
                item_id = secrets.token_urlsafe(6)
            item = dict(fields, id=item_id)
            self.items[item_id] = item
            self._save()
            return dict(item)

    def update(self, item_id, fields):
        with self.lock:
            item = self.items.get(item_id)
            if item is None:
                return None
            item.update(fields)
            self._save()
            return dict(item)

    def delete(self, item_id):
        with self.lock:
            if self.items.pop(item_id, None) is None:
                return False
            self._save()
            return True

    def bump(self, item_id, field):
        with self.lock:
            item = self.items.get(item_id)
            if item is not None:
                item[field] = item.get(field, 0) + 1
                self._save()
                return dict(item)
            return None


TYPES = {"string": str, "boolean": bool, "object": dict, "integer": int}


def is_url(value):
    """An absolute http(s) URL of printable ASCII: safe to send back in a Location header."""
    if not all(33 <= ord(c) < 127 for c in value):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def validate(body, partial):
    """The fields of a create (or, with partial, an update) body, checked against RESOURCE."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    fields = {f["name"]: f for f in RESOURCE["fields"]}
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ApiError(400, "unknown_field", "unknown field(s): " + ", ".join(unknown))
    out = {}
    for name, spec in fields.items():
        if name not in body:
            if partial:
                continue
            if spec.get("required"):
                raise ApiError(400, "missing_field", "`%s` is required" % name)
            if "default" in spec:
                out[name] = spec["default"]
            continue
        value = body[name]
        expected = TYPES[spec["type"]]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ApiError(400, "invalid_field", "`%s` must be a %s" % (name, spec["type"]))
        if spec["type"] == "string":
            value = value.strip()
            if spec.get("required") and not value:
                raise ApiError(400, "invalid_field", "`%s` must not be empty" % name)
            if len(value) > 10000:
                raise ApiError(400, "invalid_field", "`%s` is too long" % name)
        if spec.get("format") == "url" and not is_url(value):
            raise ApiError(
                400,
                "invalid_field",
                "`%s` must be an http(s) URL with a host, without spaces "
                "(percent-encode anything that is not ASCII)" % name,
            )
        out[name] = value
    return out


def make_handler(store, secret_key, quiet):
    plural = RESOURCE["plural"]

    def token(item_id):
        return hmac.new(secret_key.encode(), item_id.encode(), hashlib.sha256).hexdigest()

    class Handler(BaseHTTPRequestHandler):
        server_version = "artel-service"

        def log_message(self, fmt, *args):
            if not quiet:
                sys.stderr.write("%s %s\n" % (self.command, self.path))

        def send_json(self, status, payload, headers=()):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def read_body(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                raise ApiError(400, "invalid_length", "Content-Length must be a byte count")
            if length > MAX_BODY:
                raise ApiError(413, "body_too_large", "the body is larger than 1 MiB")
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"null")
            except ValueError:
                raise ApiError(400, "invalid_json", "the body is not valid JSON")

        def route(self):
            parts = [p for p in urlparse(self.path).path.split("/") if p]
            method = self.command
            if parts == [] and method == "GET":
                return 200, {
                    "service": RESOURCE["title"],
                    "endpoints": [
                        "GET /health",
                        "GET /api/%s" % plural,
                        "POST /api/%s" % plural,
                        "GET /api/%s/<id>" % plural,
                        "PATCH /api/%s/<id>" % plural,
                        "DELETE /api/%s/<id> (header X-Delete-Token)" % plural,
                    ]
                    + (["GET /r/<id> (redirect)"] if RESOURCE.get("redirect") else []),
                }
            if parts == ["health"] and method == "GET":
                return 200, {"status": "ok"}
            if RESOURCE.get("redirect") and len(parts) == 2 and parts[0] == "r" and method == "GET":
                item = store.bump(parts[1], "hits")
                if item is None:
                    raise ApiError(404, "not_found", "no %s %s" % (RESOURCE["singular"], parts[1]))
                return 302, None, [("Location", item[RESOURCE["redirect"]])]
            if parts[:2] == ["api", plural] and len(parts) <= 3:
                if len(parts) == 2 and method == "GET":
                    return 200, store.list()
                if len(parts) == 2 and method == "POST":
                    fields = validate(self.read_body(), partial=False)
                    if RESOURCE.get("redirect"):
                        fields["hits"] = 0
                    item = store.create(fields)
                    return 201, dict(item, delete_token=token(item["id"]))
                if len(parts) == 3:
                    item_id = parts[2]
                    if method == "GET":
                        item = store.get(item_id)
                        if item is None:
                            raise ApiError(404, "not_found", "no %s %s" % (RESOURCE["singular"], item_id))
                        return 200, item
                    if method == "PATCH":
                        item = store.update(item_id, validate(self.read_body(), partial=True))
                        if item is None:
                            raise ApiError(404, "not_found", "no %s %s" % (RESOURCE["singular"], item_id))
                        return 200, item
                    if method == "DELETE":
                        given = self.headers.get("X-Delete-Token", "")
                        if store.get(item_id) is None:
                            raise ApiError(404, "not_found", "no %s %s" % (RESOURCE["singular"], item_id))
                        if not hmac.compare_digest(given.encode(), token(item_id).encode()):
                            raise ApiError(403, "forbidden", "X-Delete-Token does not match")
                        store.delete(item_id)
                        return 204, None
                raise ApiError(405, "method_not_allowed", "%s is not allowed here" % method)
            raise ApiError(404, "not_found", "no route for %s %s" % (method, self.path))

        def handle_any(self):
            try:
                result = self.route()
                status, payload = result[0], result[1]
                headers = result[2] if len(result) > 2 else ()
                if payload is None:
                    self.send_response(status)
                    for name, value in headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_json(status, payload, headers)
            except ApiError as e:
                self.send_json(e.status, {"error": {"code": e.code, "message": e.message}})
            except Exception:
                traceback.print_exc()
                self.send_json(500, {"error": {"code": "internal", "message": "internal error"}})

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = handle_any

    return Handler


def make_server(port, host="127.0.0.1", data_file="data.json", secret_key=None, quiet=False):
    """The service on host:port (0 picks a free port); quiet drops the per-request log line."""
    store = Store(data_file)
    return ThreadingHTTPServer((host, port), make_handler(store, secret_key or "dev", quiet))


def refuse(reason):
    """Exit code 2: the environment is wrong and starting again as is will not help."""
    sys.stderr.write("refusing to start: %s\n" % reason)
    sys.exit(2)


def main():
    missing = [name for name in ["PORT", "SECRET_KEY"] + REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        refuse("set %s" % ", ".join(missing))
    try:
        port = int(os.environ["PORT"])
    except ValueError:
        refuse("PORT must be a number, not %r" % os.environ["PORT"])
    data_file = os.environ.get("DATA_FILE", "data.json")
    try:
        server = make_server(port, os.environ.get("HOST", "127.0.0.1"), data_file, os.environ["SECRET_KEY"])
    except ValueError as e:
        refuse("DATA_FILE %s is not this service's data: %s" % (data_file, e))
    sys.stderr.write("serving %s on %s:%s\n" % (RESOURCE["title"], *server.server_address[:2]))
    server.serve_forever()


if __name__ == "__main__":
    main()
