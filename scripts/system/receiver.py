# A local webhook receiver for scripts/test-system (runs inside the container): 200 on /ok,
# 500 on anything else; every request's path and event id are appended to /root/received.log.
import http.server
import json


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            event_id = json.loads(body).get("id", "?")
        except ValueError:
            event_id = "?"
        with open("/root/received.log", "a") as f:
            f.write(f"{self.path} {event_id}\n")
        status = 200 if self.path == "/ok" else 500
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", 9099), Handler).serve_forever()
