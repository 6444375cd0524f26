"""Tests of __TITLE__, written with it by artel's offline agent. Run: python3 -m unittest -v

Every resource, field, relation and action of the spec is exercised against the service
started in-process on a free port, with its data in a temporary directory.
"""

import datetime
import http.client
import json
import os
import tempfile
import threading
import unittest
from urllib.parse import urlencode

import app

SAMPLES = json.loads(r'''__SAMPLES_JSON__''')
# SAMPLES[0..3] make the records a test works on; SAMPLES[SHARED] makes the parents they share.
SHARED = 4
RESOURCES = app.API["resources"]


def writable(resource):
    return [f for f in resource["fields"] if f["writable"] and f["type"] != "reference"]


def as_query(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return value[0] if value else ""
    return value if isinstance(value, str) else json.dumps(value)


def needle(field):
    """A value of `field` holding the word Needle, for ?q=; None when its type cannot hold one."""
    return {
        "string": "Needle 1",
        "text": "a\nNeedle",
        "url": "https://example.com/Needle",
        "email": "needle@example.com",
        "string_list": ["Needle"],
    }.get(field["type"])


class ServiceTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.data_file = os.path.join(self.dir.name, "data.json")
        self.start()

    def start(self):
        self.parents = {}
        self.server = app.make_server(0, "127.0.0.1", self.data_file, "test-secret", quiet=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def fresh(self):
        """An empty service: each case starts from no data, so sample values never collide."""
        self.stop()
        if os.path.exists(self.data_file):
            os.remove(self.data_file)
        self.start()

    def tearDown(self):
        self.stop()
        self.dir.cleanup()

    def request(self, method, path, body=None, headers=None, raw_body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_address[1], timeout=5)
        payload = raw_body if body is None else json.dumps(body)
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        data = json.loads(raw) if raw else None
        return response.status, data, response

    def refused(self, expected, method, path, body=None, **kwargs):
        status, error, _ = self.request(method, path, body, **kwargs)
        self.assertEqual((status, error["error"]["code"]), expected, (method, path, body, error))
        self.assertTrue(error["error"]["message"])
        return error

    def body(self, resource, n=0, **overrides):
        """SAMPLES[n] of `resource` with `overrides`, and the shared parent for each reference
        they do not give."""
        body = dict(SAMPLES[resource["plural"]][n])
        for parent in resource["parents"]:
            if parent["field"] not in overrides:
                body[parent["field"]] = self.shared(app.RESOURCES[parent["resource"]])
        body.update(overrides)
        return body

    def shared(self, resource):
        """The id of one `resource` record children share, made from SAMPLES[SHARED] once."""
        if resource["plural"] not in self.parents:
            self.parents[resource["plural"]] = self.make(resource, SHARED)["id"]
        return self.parents[resource["plural"]]

    def make(self, resource, n=0, **overrides):
        body = self.body(resource, n, **overrides)
        status, record, _ = self.request("POST", "/api/" + resource["plural"], body)
        self.assertEqual(status, 201, (resource["plural"], body, record))
        for key, value in body.items():
            self.assertEqual(record[key], value, key)
        return record

    def ids(self, path):
        status, records, _ = self.request("GET", path)
        self.assertEqual(status, 200, records)
        return [r["id"] for r in records]

    def test_health(self):
        status, data, _ = self.request("GET", "/health")
        self.assertEqual((status, data), (200, {"status": "ok"}))

    def test_index_lists_every_resource(self):
        status, index, _ = self.request("GET", "/")
        self.assertEqual(status, 200)
        for resource in RESOURCES:
            self.assertIn("POST /api/" + resource["plural"], index["endpoints"])

    def test_create_read_list_update_replace_delete(self):
        for resource in RESOURCES:
            with self.subTest(resource["plural"]):
                self.fresh()
                base = "/api/" + resource["plural"]
                created = self.make(resource)
                path = "%s/%s" % (base, created["id"])
                self.assertTrue(created["created_at"].endswith("Z"))
                status, record, _ = self.request("GET", path)
                self.assertEqual(status, 200)
                self.assertNotIn("delete_token", record)
                self.assertEqual(dict(record, delete_token=created["delete_token"]), created)
                self.assertEqual(self.ids(base), [created["id"]])
                change = {f["name"]: SAMPLES[resource["plural"]][1][f["name"]] for f in writable(resource)[:1]}
                status, updated, _ = self.request("PATCH", path, change)
                self.assertEqual(status, 200, updated)
                self.assertEqual(updated, dict(record, **change))
                replacement = dict(SAMPLES[resource["plural"]][2])
                replacement.update({p["field"]: created[p["field"]] for p in resource["parents"]})
                status, replaced, _ = self.request("PUT", path, replacement)
                self.assertEqual(status, 200, replaced)
                for key, value in replacement.items():
                    self.assertEqual(replaced[key], value, key)
                self.assertEqual(replaced["created_at"], created["created_at"])
                self.refused((403, "forbidden"), "DELETE", path, headers={"X-Delete-Token": "wrong"})
                status, _, _ = self.request("DELETE", path, headers={"X-Delete-Token": created["delete_token"]})
                self.assertEqual(status, 204)
                self.refused((404, "not_found"), "GET", path)
                self.refused((404, "not_found"), "PATCH", path, change)
                self.refused((404, "not_found"), "DELETE", path, headers={"X-Delete-Token": "x"})

    def test_required_fields_and_defaults(self):
        for resource in RESOURCES:
            for field in writable(resource):
                with self.subTest(resource["plural"], field=field["name"]):
                    self.fresh()
                    body = self.body(resource)
                    del body[field["name"]]
                    path = "/api/" + resource["plural"]
                    if field["required"]:
                        self.refused((400, "missing_field"), "POST", path, body)
                        self.refused((400, "missing_field"), "POST", path, dict(body, **{field["name"]: None}))
                    else:
                        status, record, _ = self.request("POST", path, body)
                        self.assertEqual(status, 201, record)
                        self.assertEqual(record[field["name"]], field["default"])

    def test_bad_values_are_refused(self):
        for resource in RESOURCES:
            self.fresh()
            path = "/api/" + resource["plural"]
            existing = self.make(resource)
            body = self.body(resource, 1)
            for field in writable(resource):
                for bad in field["bad"]:
                    with self.subTest(resource["plural"], field=field["name"], value=bad):
                        self.refused((400, "invalid_field"), "POST", path, dict(body, **{field["name"]: bad}))
                        self.refused((400, "invalid_field"), "PATCH", "%s/%s" % (path, existing["id"]), {field["name"]: bad})
            status, record, _ = self.request("GET", "%s/%s" % (path, existing["id"]))
            self.assertEqual(dict(record, delete_token=existing["delete_token"]), existing)
            self.assertEqual(self.ids(path), [existing["id"]])

    def test_unknown_and_kept_fields_are_refused(self):
        for resource in RESOURCES:
            with self.subTest(resource["plural"]):
                self.fresh()
                path = "/api/" + resource["plural"]
                body = self.body(resource)
                error = self.refused((400, "unknown_field"), "POST", path, dict(body, nope=1))
                self.assertIn("nope", error["error"]["message"])
                self.refused((400, "read_only_field"), "POST", path, dict(body, id="mine"))
                for field in resource["fields"]:
                    if not field["writable"]:
                        self.refused((400, "read_only_field"), "POST", path, dict(body, **{field["name"]: 1}))
                self.refused((400, "invalid_body"), "POST", path, [1, 2])
                self.assertEqual(self.ids(path), [])

    def test_unique_fields_refuse_duplicates(self):
        for resource in RESOURCES:
            for field in writable(resource):
                if not field["unique"]:
                    continue
                with self.subTest(resource["plural"], field=field["name"]):
                    self.fresh()
                    path = "/api/" + resource["plural"]
                    first, second = self.make(resource, 0), self.make(resource, 1)
                    taken = {field["name"]: first[field["name"]]}
                    refs = {p["field"]: second[p["field"]] for p in resource["parents"]}
                    self.refused((409, "duplicate"), "POST", path, dict(SAMPLES[resource["plural"]][2], **dict(refs, **taken)))
                    self.refused((409, "duplicate"), "PATCH", "%s/%s" % (path, second["id"]), taken)
                    status, _, _ = self.request("PATCH", "%s/%s" % (path, first["id"]), taken)
                    self.assertEqual(status, 200, "a record may keep its own value")

    def test_references_must_exist_and_nest(self):
        for resource in RESOURCES:
            for parent in resource["parents"]:
                with self.subTest(resource["plural"], parent=parent["resource"]):
                    self.fresh()
                    path = "/api/" + resource["plural"]
                    field = parent["field"]
                    parents = app.RESOURCES[parent["resource"]]
                    mine, other = self.make(parents, 2), self.make(parents, 3)
                    child = self.make(resource, 0, **{field: mine["id"]})
                    self.make(resource, 1, **{field: other["id"]})
                    body = dict(SAMPLES[resource["plural"]][2], **{p["field"]: child[p["field"]] for p in resource["parents"]})
                    self.refused((422, "missing_parent"), "POST", path, dict(body, **{field: "nobody"}))
                    self.refused((400, "invalid_field"), "POST", path, dict(body, **{field: 5}))
                    self.refused((400, "missing_field"), "POST", path, {k: v for k, v in body.items() if k != field})
                    nested = "/api/%s/%s/%s" % (parent["resource"], mine["id"], resource["plural"])
                    self.assertEqual(self.ids(nested), [child["id"]])
                    self.refused((404, "not_found"), "GET", "/api/%s/nobody/%s" % (parent["resource"], resource["plural"]))
                    child_path = "%s/%s" % (path, child["id"])
                    self.refused((422, "missing_parent"), "PATCH", child_path, {field: "nobody"})
                    parent_path = "/api/%s/%s" % (parent["resource"], mine["id"])
                    token = {"X-Delete-Token": mine["delete_token"]}
                    self.refused((409, "has_children"), "DELETE", parent_path, headers=token)
                    self.request("DELETE", child_path, headers={"X-Delete-Token": child["delete_token"]})
                    status, _, _ = self.request("DELETE", parent_path, headers=token)
                    self.assertEqual(status, 204)

    def test_actions(self):
        today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        for resource in RESOURCES:
            for action in resource["actions"]:
                if action["kind"] == "redirect":
                    continue
                with self.subTest(resource["plural"], action=action["name"]):
                    self.fresh()
                    flag = action["field"]
                    unset = {flag: not action["value"]} if action["kind"] == "set_flag" else {}
                    record = self.make(resource, **unset)
                    path = "/api/%s/%s/%s" % (resource["plural"], record["id"], action["name"])
                    status, done, _ = self.request("POST", path)
                    self.assertEqual(status, 200, done)
                    if action["kind"] == "set_flag":
                        self.assertEqual(done[action["field"]], action["value"])
                    else:
                        self.assertEqual(done[action["field"]], [today])
                        self.refused((409, "already_done_today"), "POST", path)
                    status, read, _ = self.request("GET", "/api/%s/%s" % (resource["plural"], record["id"]))
                    self.assertEqual(read, done)
                    self.refused((404, "not_found"), "POST", "/api/%s/nobody/%s" % (resource["plural"], action["name"]))
                    self.refused((405, "method_not_allowed"), "GET", path)

    def test_redirects_count_hits(self):
        for resource in RESOURCES:
            if not resource["redirect"]:
                continue
            with self.subTest(resource["plural"]):
                self.fresh()
                record = self.make(resource)
                self.assertEqual(record["hits"], 0)
                status, _, response = self.request("GET", "/r/" + record["id"])
                self.assertEqual(status, 302)
                self.assertEqual(response.getheader("Location"), record[resource["redirect"]])
                _, read, _ = self.request("GET", "/api/%s/%s" % (resource["plural"], record["id"]))
                self.assertEqual(read["hits"], 1)
                self.refused((404, "not_found"), "GET", "/r/nobody")

    def test_filters(self):
        for resource in RESOURCES:
            fields = {f["name"]: f for f in resource["fields"]}
            path = "/api/" + resource["plural"]
            for name in resource["filters"]:
                with self.subTest(resource["plural"], filter=name):
                    self.fresh()
                    refs = [{}, {}]
                    if fields[name]["type"] == "reference":
                        parents = app.RESOURCES[fields[name]["parent"]]
                        refs = [{name: self.make(parents, n)["id"]} for n in (2, 3)]
                    first, second = self.make(resource, 0, **refs[0]), self.make(resource, 1, **refs[1])
                    found = self.ids("%s?%s" % (path, urlencode({name: as_query(first[name])})))
                    if fields[name]["writable"] and first[name] != second[name]:
                        self.assertEqual(found, [first["id"]])
                    if fields[name]["type"] in ("integer", "number", "money", "boolean", "datetime"):
                        self.refused((400, "invalid_filter"), "GET", "%s?%s=not-a-value" % (path, name))
            self.refused((400, "unknown_filter"), "GET", path + "?nope=1")

    def test_search(self):
        for resource in RESOURCES:
            fields = {f["name"]: f for f in resource["fields"]}
            path = "/api/" + resource["plural"]
            for name in resource["search"]:
                value = needle(fields[name])
                if value is None or not fields[name]["writable"]:
                    continue
                with self.subTest(resource["plural"], search=name):
                    self.fresh()
                    found = self.make(resource, 0, **{name: value})
                    missed = self.make(resource, 1)
                    self.assertEqual(self.ids(path + "?q=nEEDLE"), [found["id"]])
                    self.assertEqual(self.ids(path + "?q="), [found["id"], missed["id"]])

    def test_sort(self):
        for resource in RESOURCES:
            self.fresh()
            path = "/api/" + resource["plural"]
            made = [self.make(resource, n) for n in (2, 0, 1)]
            for name in resource["sort"]:
                with self.subTest(resource["plural"], sort=name):
                    for order in (name, "-" + name):
                        status, records, _ = self.request("GET", "%s?sort=%s" % (path, order))
                        self.assertEqual(status, 200, records)
                        values = [r[name] for r in records]
                        self.assertEqual(len(values), len(made))
                        self.assertEqual(values, sorted(values, reverse=order.startswith("-")))
            self.refused((400, "invalid_sort"), "GET", path + "?sort=nope")

    @unittest.skipUnless(RESOURCES, "the service has no resources")
    def test_bad_bodies(self):
        path = "/api/" + RESOURCES[0]["plural"]
        self.refused((400, "invalid_json"), "POST", path, raw_body="{not json")
        self.refused((400, "invalid_json"), "POST", path, raw_body='{"x": NaN}')
        self.refused((400, "invalid_json"), "POST", path, raw_body="[" * 100000)
        self.refused((400, "invalid_body"), "POST", path, raw_body="")
        self.refused(
            (413, "body_too_large"), "POST", path, raw_body="{}", headers={"Content-Length": str(app.MAX_BODY + 1)}
        )
        self.refused((400, "invalid_length"), "POST", path, raw_body="{}", headers={"Content-Length": "-1"})

    def test_unknown_paths_and_methods(self):
        self.refused((404, "not_found"), "GET", "/nowhere")
        self.refused((404, "not_found"), "GET", "/api/nothing-here")
        self.refused((405, "method_not_allowed"), "POST", "/health")
        for resource in RESOURCES:
            path = "/api/" + resource["plural"]
            self.refused((404, "not_found"), "GET", path + "/nobody")
            self.refused((404, "not_found"), "GET", path + "/nobody/nothing")
            self.refused((404, "not_found"), "GET", path + "/a/b/c")
            self.refused((405, "method_not_allowed"), "DELETE", path)

    def test_data_survives_a_restart(self):
        made = [(r, self.make(r)) for r in RESOURCES]
        self.stop()
        self.start()
        for resource, record in made:
            status, read, _ = self.request("GET", "/api/%s/%s" % (resource["plural"], record["id"]))
            self.assertEqual(status, 200)
            self.assertEqual(dict(read, delete_token=record["delete_token"]), record)
        if made:
            with open(self.data_file, encoding="utf-8") as f:
                self.assertEqual(json.load(f)["format"], app.DATA_FORMAT)
        self.assertFalse(os.path.exists(self.data_file + ".tmp"))

    def test_another_services_data_is_refused(self):
        other = os.path.join(self.dir.name, "other.json")
        with open(other, "w", encoding="utf-8") as f:
            json.dump({"abc": {"id": "abc"}}, f)
        with self.assertRaises(ValueError):
            app.make_server(0, "127.0.0.1", other, "test-secret", quiet=True)


if __name__ == "__main__":
    unittest.main()
