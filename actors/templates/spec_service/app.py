"""__TITLE__ — a JSON API over HTTP, compiled from its spec by artel's offline agent.

Standard library only. Configuration comes from the environment:
  PORT        TCP port to listen on (required)
  HOST        address to bind (default 127.0.0.1)
  DATA_FILE   JSON file the data is kept in (default $DATA_DIR/data.json, else ./data.json)
  DATA_DIR    the directory of DATA_FILE when DATA_FILE is not set
__ENV_DOC__

Routes (README.md lists them per resource):
  GET /health, GET /
  GET, POST /api/<plural>                  list (?<filter>=, ?q=, ?sort=field|-field), create
  GET, PATCH, PUT, DELETE /api/<plural>/<id>
  GET /api/<parent plural>/<id>/<child plural>
  POST /api/<plural>/<id>/<action>
  GET /r/<id>                              redirect to the record's URL, counting the hit
Errors are a 4xx status with {"error": {"code": ..., "message": ...}}. A record that others
still belong to cannot be deleted (409): delete those first.
"""

import datetime
import decimal
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

API = json.loads(r'''__API_JSON__''')
REQUIRED_ENV = json.loads(r'''__REQUIRED_ENV_JSON__''')
RESOURCES = {r["plural"]: r for r in API["resources"]}
REDIRECTS = [r for r in API["resources"] if r["redirect"]]
MAX_BODY = 1024 * 1024
DATA_FORMAT = "artel-spec-service"
UTC = datetime.timezone.utc

DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(name, problem):
    return ApiError(400, "invalid_field", "`%s` %s" % (name, problem))


def parse_date(text):
    match = DATE.fullmatch(text)
    if not match:
        return None
    try:
        return datetime.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def parse_datetime(text):
    """An aware datetime for an RFC 3339 date-time, or None."""
    match = DATETIME.fullmatch(text)
    if not match:
        return None
    fraction, offset = match.group(7), match.group(8)
    try:
        if offset in ("Z", "z"):
            zone = UTC
        else:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                return None
            sign = -1 if offset[0] == "-" else 1
            zone = datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))
        micro = int((fraction or ".0")[1:7].ljust(6, "0"))
        return datetime.datetime(*(int(g) for g in match.groups()[:6]), micro, tzinfo=zone)
    except ValueError:
        return None


def is_url(value):
    """An absolute http(s) URL of printable ASCII: safe to send back in a Location header."""
    if not all(33 <= ord(c) < 127 for c in value):
        return False
    try:
        parsed = urlparse(value)
        return parsed.scheme in ("http", "https") and bool(parsed.hostname)
    except ValueError:
        return False


def check_text(name, value, field, single_line):
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    if single_line:
        value = value.strip()
        if "\n" in value or "\r" in value:
            raise invalid(name, "must be a single line")
    if len(value) > field["max_length"]:
        raise invalid(name, "is longer than %d characters" % field["max_length"])
    return value


def check_value(field, value):
    """`value` checked against `field`'s type, as stored; raises ApiError(400) when it does not fit."""
    name, kind = field["name"], field["type"]
    if kind in ("string", "text"):
        value = check_text(name, value, field, kind == "string")
        if field["required"] and not value.strip():
            raise invalid(name, "must not be empty")
        return value
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid(name, "must be a whole number")
        return value
    if kind in ("number", "money"):
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise invalid(name, "must be a number")
        if kind == "money":
            if value < 0:
                raise invalid(name, "must not be negative")
            if decimal.Decimal(repr(value)).as_tuple().exponent < -2:
                raise invalid(name, "must have at most two decimal places")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise invalid(name, "must be true or false")
        return value
    if kind == "date":
        if not isinstance(value, str) or parse_date(value) is None:
            raise invalid(name, "must be a date, YYYY-MM-DD")
        return value
    if kind == "datetime":
        if not isinstance(value, str) or parse_datetime(value) is None:
            raise invalid(name, "must be an RFC 3339 date-time, e.g. 2024-03-05T10:00:00Z")
        return value
    if kind == "url":
        if not isinstance(value, str) or len(value) > field["max_length"] or not is_url(value):
            raise invalid(
                name,
                "must be an http(s) URL with a host, without spaces "
                "(percent-encode anything that is not ASCII)",
            )
        return value
    if kind == "email":
        if not isinstance(value, str) or len(value) > field["max_length"] or not EMAIL.fullmatch(value):
            raise invalid(name, "must be an e-mail address, e.g. ann@example.com")
        return value
    if kind == "enum":
        if not isinstance(value, str) or value not in field["choices"]:
            raise invalid(name, "must be one of: %s" % ", ".join(field["choices"]))
        return value
    if kind == "string_list":
        if not isinstance(value, list) or len(value) > field["max_items"]:
            raise invalid(name, "must be a list of at most %d strings" % field["max_items"])
        return [check_text(name + " item", item, field, True) for item in value]
    if kind == "reference":
        if not isinstance(value, str) or not value:
            raise invalid(name, "must be the id of a %s" % field["parent_singular"])
        return value
    raise invalid(name, "cannot be set")


def copy(value):
    return json.loads(json.dumps(value))


def now():
    return datetime.datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def filter_value(field, text):
    """The value a `?<field>=text` filter compares with, parsed as the field's type."""
    kind = field["type"]
    try:
        if kind == "integer":
            return int(text)
        if kind in ("number", "money", "counter"):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
    except ValueError:
        raise ApiError(400, "invalid_filter", "`%s` filters by a number, not %r" % (field["name"], text))
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ApiError(400, "invalid_filter", "`%s` filters by true or false" % field["name"])
        return text.lower() == "true"
    if kind == "datetime":
        moment = parse_datetime(text)
        if moment is None:
            raise ApiError(400, "invalid_filter", "`%s` filters by an RFC 3339 date-time" % field["name"])
        return moment
    return text


def matches(field, value, wanted):
    if value is None:
        return False
    if field["type"] in ("string_list", "date_list"):
        return wanted in value
    if field["type"] == "datetime":
        return parse_datetime(value) == wanted
    return value == wanted


def sort_key(name, kind):
    def key(record):
        value = record.get(name)
        if value is None:
            return (1, 0)
        if kind == "datetime":
            moment = parse_datetime(value)
            return (0, moment.timestamp()) if moment else (1, 0)
        return (0, value)

    return key


def search_text(value):
    if isinstance(value, list):
        return "\n".join(str(v) for v in value).lower()
    return "" if value is None else str(value).lower()


def query_records(resource, query, records):
    """`records` narrowed by the query's filters and ?q=, ordered by its ?sort=."""
    fields = {f["name"]: f for f in resource["fields"]}
    wanted, needle, sort = [], None, None
    for key, values in parse_qs(query, keep_blank_values=True).items():
        value = values[-1]
        if key == "q":
            needle = value.strip().lower() or None
        elif key == "sort":
            sort = value
        elif key in resource["filters"]:
            wanted.append((fields[key], filter_value(fields[key], value)))
        else:
            allowed = ", ".join(resource["filters"] + ["q", "sort"])
            raise ApiError(400, "unknown_filter", "`%s` is not a filter of %s; use: %s" % (key, resource["plural"], allowed))
    out = [
        r
        for r in records
        if all(matches(f, r.get(f["name"]), v) for f, v in wanted)
        and (needle is None or any(needle in search_text(r.get(name)) for name in resource["search"]))
    ]
    if sort is not None:
        name = sort[1:] if sort.startswith("-") else sort
        if name not in resource["sort"]:
            choices = ", ".join(resource["sort"]) or "nothing"
            raise ApiError(400, "invalid_sort", "%s cannot be sorted by `%s`; sort by: %s (prefix - for descending)" % (resource["plural"], name, choices))
        kind = "datetime" if name == "created_at" else fields[name]["type"]
        try:
            out.sort(key=sort_key(name, kind), reverse=sort.startswith("-"))
        except TypeError:
            out.sort(key=lambda r: json.dumps(r.get(name)), reverse=sort.startswith("-"))
    return out


class Service:
    """Every resource's records by id, kept in one JSON file written atomically after each change."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.data = {"format": DATA_FORMAT, "resources": {}}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.data = json.load(f)
        if (
            not isinstance(self.data, dict)
            or self.data.get("format") != DATA_FORMAT
            or not isinstance(self.data.get("resources"), dict)
        ):
            raise ValueError("%s does not hold this service's data" % path)
        for plural in RESOURCES:
            self.data["resources"].setdefault(plural, {})

    def _save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _table(self, resource):
        return self.data["resources"][resource["plural"]]

    def _record(self, resource, record_id):
        record = self._table(resource).get(record_id)
        if record is None:
            raise ApiError(404, "not_found", "no %s %s" % (resource["singular"], record_id))
        return record

    def _new_id(self):
        while True:
            record_id = secrets.token_urlsafe(6)
            if not any(record_id in table for table in self.data["resources"].values()):
                return record_id

    def _accept(self, resource, body, current, replace):
        """The fields `body` gives, checked; with defaults for a create or a replace (PUT)."""
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_body", "the body must be a JSON object")
        fields = {f["name"]: f for f in resource["fields"]}
        kept = sorted(k for k in body if k in ("id", "created_at") or (k in fields and not fields[k]["writable"]))
        if kept:
            raise ApiError(400, "read_only_field", "the service keeps %s: leave it out" % ", ".join(kept))
        unknown = sorted(k for k in body if k not in fields)
        if unknown:
            raise ApiError(
                400,
                "unknown_field",
                "unknown field(s): %s; %s has: %s" % (", ".join(unknown), resource["plural"], ", ".join(fields)),
            )
        fresh = current is None or replace
        out = {}
        for name, field in fields.items():
            if not field["writable"]:
                if current is None:
                    out[name] = copy(field["default"])
                continue
            given = body.get(name)
            if given is not None:
                out[name] = check_value(field, given)
            elif name in body or fresh:
                if field["required"]:
                    raise ApiError(400, "missing_field", "`%s` is required" % name)
                out[name] = None if name in body else copy(field["default"])
        for name, value in out.items():
            field = fields[name]
            if field["type"] == "reference" and value not in self.data["resources"][field["parent"]]:
                raise ApiError(
                    422,
                    "missing_parent",
                    "`%s`: no %s %s; create it first or give the id of an existing one"
                    % (name, field["parent_singular"], value),
                )
            if field["unique"] and value is not None:
                for other in self._table(resource).values():
                    if other.get(name) == value and (current is None or other["id"] != current["id"]):
                        raise ApiError(
                            409,
                            "duplicate",
                            "another %s already has this `%s`: it must be unique" % (resource["singular"], name),
                        )
        return out

    def list(self, resource, query, parent=None):
        with self.lock:
            records = list(self._table(resource).values())
            if parent is not None:
                parent_resource, parent_id, field = parent
                self._record(parent_resource, parent_id)
                records = [r for r in records if r.get(field) == parent_id]
            return copy(query_records(resource, query, records))

    def get(self, resource, record_id):
        with self.lock:
            return copy(self._record(resource, record_id))

    def create(self, resource, body):
        with self.lock:
            fields = self._accept(resource, body, None, False)
            record = dict(id=self._new_id(), created_at=now(), **fields)
            self._table(resource)[record["id"]] = record
            self._save()
            return copy(record)

    def update(self, resource, record_id, body, replace):
        with self.lock:
            record = self._record(resource, record_id)
            record.update(self._accept(resource, body, record, replace))
            self._save()
            return copy(record)

    def delete(self, resource, record_id, authorized):
        with self.lock:
            self._record(resource, record_id)
            if not authorized(record_id):
                raise ApiError(403, "forbidden", "X-Delete-Token does not match this %s" % resource["singular"])
            for child in resource["children"]:
                count = sum(1 for r in self.data["resources"][child["resource"]].values() if r.get(child["field"]) == record_id)
                if count:
                    raise ApiError(
                        409,
                        "has_children",
                        "%s %s still has %d %s: delete them first" % (resource["singular"], record_id, count, child["resource"]),
                    )
            del self._table(resource)[record_id]
            self._save()

    def act(self, resource, record_id, action):
        with self.lock:
            record = self._record(resource, record_id)
            field = action["field"]
            if action["kind"] == "set_flag":
                record[field] = action["value"]
            else:
                today = datetime.datetime.now(UTC).date().isoformat()
                days = record.get(field) or []
                if today in days:
                    raise ApiError(
                        409,
                        "already_done_today",
                        "%s %s was already checked in today (%s, UTC)" % (resource["singular"], record_id, today),
                    )
                record[field] = days + [today]
            self._save()
            return copy(record)

    def follow(self, record_id):
        """The URL `GET /r/<id>` redirects to; counts the hit."""
        with self.lock:
            for resource in REDIRECTS:
                record = self._table(resource).get(record_id)
                if record is not None and record.get(resource["redirect"]):
                    record["hits"] = record.get("hits", 0) + 1
                    self._save()
                    return record[resource["redirect"]]
            raise ApiError(404, "not_found", "no link %s" % record_id)


def endpoints():
    out = ["GET /health"]
    for r in API["resources"]:
        base = "/api/" + r["plural"]
        out += ["GET %s" % base, "POST %s" % base, "GET %s/<id>" % base, "PATCH %s/<id>" % base, "PUT %s/<id>" % base]
        out.append("DELETE %s/<id> (header X-Delete-Token)" % base)
        out += ["GET %s/<id>/%s" % (base, c["resource"]) for c in r["children"]]
        out += ["POST %s/<id>/%s" % (base, a["name"]) for a in r["actions"] if a["kind"] != "redirect"]
    if REDIRECTS:
        out.append("GET /r/<id> (redirect)")
    return out


def make_handler(service, secret_key, quiet):
    def token(resource, record_id):
        message = ("%s/%s" % (resource["plural"], record_id)).encode()
        return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()

    class Handler(BaseHTTPRequestHandler):
        server_version = "artel-service"

        def log_message(self, fmt, *args):
            if not quiet:
                sys.stderr.write("%s %s\n" % (self.command, self.path))

        def send(self, status, payload, headers=()):
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def read_raw(self):
            """The request's body, read in full (so the connection closes cleanly)."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                raise ApiError(400, "invalid_length", "Content-Length must be a byte count")
            if length > MAX_BODY:
                raise ApiError(413, "body_too_large", "the body is larger than 1 MiB")
            return self.rfile.read(length) if length else b""

        def body(self, raw):
            def refuse(constant):
                raise ValueError(constant)

            try:
                return json.loads(raw or b"null", parse_constant=refuse)
            except ValueError:
                raise ApiError(400, "invalid_json", "the body is not valid JSON")
            except RecursionError:
                raise ApiError(400, "invalid_json", "the body is nested too deeply")

        def route(self, raw):
            path, _, query = self.path.partition("?")
            query = query.partition("#")[0]
            parts = [unquote(p) for p in path.split("/") if p]
            method = self.command

            def allow(*methods):
                if method not in methods:
                    raise ApiError(405, "method_not_allowed", "%s is not allowed on %s; use %s" % (method, path, ", ".join(methods)))

            if parts == []:
                allow("GET")
                return 200, {"service": API["title"], "endpoints": endpoints()}
            if parts == ["health"]:
                allow("GET")
                return 200, {"status": "ok"}
            if len(parts) == 2 and parts[0] == "r" and REDIRECTS:
                allow("GET")
                return 302, None, [("Location", service.follow(parts[1]))]
            if len(parts) < 2 or len(parts) > 4 or parts[0] != "api" or parts[1] not in RESOURCES:
                raise ApiError(404, "not_found", "no route for %s %s" % (method, path))
            resource = RESOURCES[parts[1]]
            if len(parts) == 2:
                allow("GET", "POST")
                if method == "GET":
                    return 200, service.list(resource, query)
                record = service.create(resource, self.body(raw))
                return 201, dict(record, delete_token=token(resource, record["id"]))
            record_id = parts[2]
            if len(parts) == 3:
                allow("GET", "PATCH", "PUT", "DELETE")
                if method == "GET":
                    return 200, service.get(resource, record_id)
                if method == "DELETE":
                    given = self.headers.get("X-Delete-Token", "").encode()
                    service.delete(resource, record_id, lambda i: hmac.compare_digest(given, token(resource, i).encode()))
                    return 204, None
                return 200, service.update(resource, record_id, self.body(raw), replace=method == "PUT")
            for child in resource["children"]:
                if child["resource"] == parts[3]:
                    allow("GET")
                    parent = (resource, record_id, child["field"])
                    return 200, service.list(RESOURCES[child["resource"]], query, parent)
            for action in resource["actions"]:
                if action["name"] == parts[3] and action["kind"] != "redirect":
                    allow("POST")
                    return 200, service.act(resource, record_id, action)
            raise ApiError(404, "not_found", "no route for %s %s" % (method, path))

        def handle_any(self):
            try:
                result = self.route(self.read_raw())
                self.send(result[0], result[1], result[2] if len(result) > 2 else ())
            except ApiError as e:
                self.send(e.status, {"error": {"code": e.code, "message": e.message}})
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception:
                traceback.print_exc()
                self.send(500, {"error": {"code": "internal", "message": "internal error"}})

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    return Handler


def make_server(port, host="127.0.0.1", data_file="data.json", secret_key=None, quiet=False):
    """The service on host:port (0 picks a free port); quiet drops the per-request log line."""
    service = Service(data_file)
    return ThreadingHTTPServer((host, port), make_handler(service, secret_key or "dev", quiet))


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
    data_file = os.environ.get("DATA_FILE") or os.path.join(os.environ.get("DATA_DIR") or ".", "data.json")
    try:
        server = make_server(port, os.environ.get("HOST", "127.0.0.1"), data_file, os.environ["SECRET_KEY"])
    except ValueError as e:
        refuse("DATA_FILE %s is not this service's data: %s" % (data_file, e))
    sys.stderr.write("serving %s on %s:%s\n" % (API["title"], *server.server_address[:2]))
    server.serve_forever()


if __name__ == "__main__":
    main()
