"""Tests of the scaffold. Run: python3 -m unittest -v"""

import http.client
import json
import threading
import unittest

import app


class HealthTest(unittest.TestCase):
    def test_health(self):
        server = app.make_server(0, quiet=True)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
            conn.request("GET", "/health")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            self.assertEqual(json.loads(response.read()), {"status": "ok"})
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    unittest.main()
