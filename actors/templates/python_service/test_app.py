"""Tests of __TITLE__, written by artel's template agent. Run: python3 -m unittest -v"""

import http.client
import json
import os
import tempfile
import threading
import unittest

import app

SAMPLE = json.loads(r'''__SAMPLE_JSON__''')
PLURAL = app.RESOURCE["plural"]


class ServiceTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.data_file = os.path.join(self.dir.name, "data.json")
        self.start()

    def start(self):
        self.server = app.make_server(0, "127.0.0.1", self.data_file, "test-secret", quiet=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

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

    def test_health(self):
        status, data, _ = self.request("GET", "/health")
        self.assertEqual((status, data), (200, {"status": "ok"}))

    def test_create_list_get(self):
        status, created, _ = self.request("POST", "/api/" + PLURAL, SAMPLE)
        self.assertEqual(status, 201, created)
        for key, value in SAMPLE.items():
            self.assertEqual(created[key], value)
        status, items, _ = self.request("GET", "/api/" + PLURAL)
        self.assertEqual(status, 200)
        self.assertEqual([i["id"] for i in items], [created["id"]])
        status, item, _ = self.request("GET", "/api/%s/%s" % (PLURAL, created["id"]))
        self.assertEqual((status, item["id"]), (200, created["id"]))

    def test_update_and_delete_with_token(self):
        _, created, _ = self.request("POST", "/api/" + PLURAL, SAMPLE)
        path = "/api/%s/%s" % (PLURAL, created["id"])
        plain = [f["name"] for f in app.RESOURCE["fields"] if f["type"] == "string" and "format" not in f]
        change = {plain[0]: "changed"} if plain else dict(SAMPLE)
        status, updated, _ = self.request("PATCH", path, change)
        self.assertEqual(status, 200, updated)
        for key, value in change.items():
            self.assertEqual(updated[key], value)
        status, _, _ = self.request("DELETE", path, headers={"X-Delete-Token": "wrong"})
        self.assertEqual(status, 403)
        status, _, _ = self.request("DELETE", path, headers={"X-Delete-Token": created["delete_token"]})
        self.assertEqual(status, 204)
        status, _, _ = self.request("GET", path)
        self.assertEqual(status, 404)

    def test_validation(self):
        status, error, _ = self.request("POST", "/api/" + PLURAL, dict(SAMPLE, nope=1))
        self.assertEqual((status, error["error"]["code"]), (400, "unknown_field"))
        self.assertIn("nope", error["error"]["message"])
        status, error, _ = self.request("POST", "/api/" + PLURAL, dict(SAMPLE, id="mine"))
        self.assertEqual((status, error["error"]["code"]), (400, "unknown_field"))
        status, error, _ = self.request("POST", "/api/" + PLURAL, [1, 2])
        self.assertEqual((status, error["error"]["code"]), (400, "invalid_body"))
        required = [f["name"] for f in app.RESOURCE["fields"] if f.get("required")]
        if required:
            body = dict(SAMPLE)
            body.pop(required[0])
            status, error, _ = self.request("POST", "/api/" + PLURAL, body)
            self.assertEqual((status, error["error"]["code"]), (400, "missing_field"))

    def test_wrong_types_are_refused(self):
        wrong = {"string": 12345, "boolean": "yes", "object": [1], "integer": "1"}
        for field in app.RESOURCE["fields"]:
            body = dict(SAMPLE)
            body[field["name"]] = wrong[field["type"]]
            status, error, _ = self.request("POST", "/api/" + PLURAL, body)
            self.assertEqual((status, error["error"]["code"]), (400, "invalid_field"), field)
        status, items, _ = self.request("GET", "/api/" + PLURAL)
        self.assertEqual((status, items), (200, []))

    def test_urls_must_be_http(self):
        urls = [f["name"] for f in app.RESOURCE["fields"] if f.get("format") == "url"]
        for name in urls:
            for bad in ["ftp://example.com/", "javascript:alert(1)", "https://", "https://a b/"]:
                body = dict(SAMPLE)
                body[name] = bad
                status, error, _ = self.request("POST", "/api/" + PLURAL, body)
                self.assertEqual((status, error["error"]["code"]), (400, "invalid_field"), bad)

    def test_bad_bodies(self):
        status, error, _ = self.request("POST", "/api/" + PLURAL, raw_body="{not json")
        self.assertEqual((status, error["error"]["code"]), (400, "invalid_json"))
        status, error, _ = self.request(
            "POST", "/api/" + PLURAL, raw_body="{}", headers={"Content-Length": str(app.MAX_BODY + 1)}
        )
        self.assertEqual((status, error["error"]["code"]), (413, "body_too_large"))

    def test_unknown_paths_are_404(self):
        status, error, _ = self.request("GET", "/api/%s/missing" % PLURAL)
        self.assertEqual((status, error["error"]["code"]), (404, "not_found"))
        status, _, _ = self.request("GET", "/nowhere")
        self.assertEqual(status, 404)
        status, _, _ = self.request("GET", "/api/%s/missing/more" % PLURAL)
        self.assertEqual(status, 404)
        status, _, _ = self.request("PATCH", "/api/%s/missing" % PLURAL, dict(SAMPLE))
        self.assertEqual(status, 404)
        status, _, _ = self.request("DELETE", "/api/%s/missing" % PLURAL, headers={"X-Delete-Token": "x"})
        self.assertEqual(status, 404)

    def test_index_describes_the_api(self):
        status, index, _ = self.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn("POST /api/" + PLURAL, index["endpoints"])

    def test_data_survives_a_restart(self):
        _, created, _ = self.request("POST", "/api/" + PLURAL, SAMPLE)
        self.stop()
        self.start()
        status, item, _ = self.request("GET", "/api/%s/%s" % (PLURAL, created["id"]))
        self.assertEqual((status, item["id"]), (200, created["id"]))

    @unittest.skipUnless(app.RESOURCE.get("redirect"), "this resource does not redirect")
    def test_redirect(self):
        _, created, _ = self.request("POST", "/api/" + PLURAL, SAMPLE)
        status, _, response = self.request("GET", "/r/" + created["id"])
        self.assertEqual(status, 302)
        self.assertEqual(response.getheader("Location"), SAMPLE[app.RESOURCE["redirect"]])
        _, item, _ = self.request("GET", "/api/%s/%s" % (PLURAL, created["id"]))
        self.assertEqual(item["hits"], 1)


if __name__ == "__main__":
    unittest.main()
