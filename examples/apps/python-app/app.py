"""A tiny web app: answers one request with a greeting, or serves forever."""
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from python {sys.version_info.major}.{sys.version_info.minor} in {sys.prefix}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    if os.environ.get("ONE_SHOT"):
        print(f"hello from python {sys.version_info.major}.{sys.version_info.minor} in {sys.prefix}")
    else:
        HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Hello).serve_forever()
