#!/usr/bin/env python3
"""A registry that answers the distribution API for one image, or misbehaves in one chosen way.

Usage: hostile-registry.py MODE PORTFILE
Serves `app:1` (linux/amd64 and linux/arm64: busybox echoing "served-ok") on 127.0.0.1 at a free
port, written to PORTFILE. Modes:
  ok               behaves
  flaky            answers 500 to the first two manifest requests
  blob-mismatch    serves the layer with one byte changed (same size)
  announced-wrong  announces a Docker-Content-Digest that is not the manifest's
  huge-manifest    answers the manifest with 100 MB
  long-index       the tag names an index of 10,000 entries
  cycle            the tag names an index whose entry is an index naming the first one
  unsupported      the manifest's layer has a media type no image tool reads
  bearer           asks for a bearer token from /token, given for user:pass only
  refuse           answers every request 401 (Basic)
Every request is logged to stderr as "METHOD PATH".
"""
import gzip, hashlib, http.server, io, json, os, platform, socketserver, sys, tarfile

MODE, PORTFILE = sys.argv[1], sys.argv[2]
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin",):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        with open("/bin/busybox", "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), digest(uncompressed)


LAYER, DIFF_ID = layer()
CONFIG = json.dumps({
    "architecture": ARCH, "os": "linux",
    "config": {"Cmd": ["/bin/busybox", "echo", "served-ok"]},
    "rootfs": {"type": "layers", "diff_ids": [DIFF_ID]},
}).encode()
LAYER_TYPE = "application/vnd.example.weird" if MODE == "unsupported" else "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(CONFIG), "size": len(CONFIG)},
    "layers": [{"mediaType": LAYER_TYPE, "digest": digest(LAYER), "size": len(LAYER)}],
}).encode()
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def index(entries):
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": entries}).encode()


def entry(media_type, data_digest, size, arch=ARCH):
    return {"mediaType": media_type, "digest": data_digest, "size": size, "platform": {"os": "linux", "architecture": arch}}


DOCUMENTS = {digest(MANIFEST): ("application/vnd.oci.image.manifest.v1+json", MANIFEST)}
TAG = index([entry("application/vnd.oci.image.manifest.v1+json", digest(MANIFEST), len(MANIFEST), "s390x"),
             entry("application/vnd.oci.image.manifest.v1+json", digest(MANIFEST), len(MANIFEST))])
if MODE == "long-index":
    TAG = index([entry("application/vnd.oci.image.manifest.v1+json", digest(MANIFEST), len(MANIFEST), "s390x")] * 9999
                + [entry("application/vnd.oci.image.manifest.v1+json", digest(MANIFEST), len(MANIFEST))])
if MODE == "cycle":
    # B names A by digest; A names B. Each is a real index whose bytes match its digest.
    inner = index([entry(INDEX_TYPE, "sha256:" + "0" * 64, 1)])
    outer = index([entry(INDEX_TYPE, digest(inner), len(inner))])
    DOCUMENTS[digest(inner)] = (INDEX_TYPE, inner)
    TAG = outer
DOCUMENTS[digest(TAG)] = (INDEX_TYPE, TAG)
BLOBS = {digest(CONFIG): CONFIG, digest(LAYER): LAYER}
STATE = {"manifest_requests": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def authorised(self):
        if MODE == "refuse":
            self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", 'Basic realm="hostile"')])
            return False
        if MODE == "bearer" and self.path.startswith("/v2/") and self.headers.get("Authorization") != "Bearer tok-123":
            port = self.server.server_address[1]
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="hostile",scope="repository:app:pull"'
            self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", challenge)])
            return False
        return True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        sys.stderr.write(f"{self.command} {self.path}\n")
        sys.stderr.flush()
        if self.path.startswith("/token"):
            # user:pass, base64
            if self.headers.get("Authorization") == "Basic dXNlcjpwYXNz":
                self.send(200, b'{"token":"tok-123"}')
            else:
                self.send(401, b"{}")
            return
        if not self.authorised():
            return
        if self.path == "/v2/":
            self.send(200, b"{}")
            return
        parts = self.path.split("/")
        if len(parts) != 5 or parts[2] != "app":
            self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
            return
        kind, ref = parts[3], parts[4]
        if kind == "manifests":
            STATE["manifest_requests"] += 1
            if MODE == "flaky" and STATE["manifest_requests"] <= 2:
                self.send(500, b'{"errors":[{"code":"UNKNOWN"}]}')
                return
            if MODE == "huge-manifest":
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", str(100 << 20))
                self.end_headers()
                try:
                    for _ in range(100):
                        self.wfile.write(b" " * (1 << 20))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            if ref == "1":
                media_type, body = INDEX_TYPE, TAG
            elif ref in DOCUMENTS:
                media_type, body = DOCUMENTS[ref]
            else:
                self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                return
            announced = digest(body) if MODE != "announced-wrong" else "sha256:" + "1" * 64
            self.send(200, body, [("Content-Type", media_type), ("Docker-Content-Digest", announced)])
            return
        if kind == "blobs" and ref in BLOBS:
            body = BLOBS[ref]
            if MODE == "blob-mismatch" and ref == digest(LAYER):
                body = body[:-1] + bytes([body[-1] ^ 1])
            self.send(200, body, [("Content-Type", "application/octet-stream")])
            return
        self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
