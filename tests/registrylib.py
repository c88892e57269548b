"""A real CNCF distribution registry (Debian's `docker-registry`) for the tests, on
127.0.0.1, with a config, an htpasswd file (bcrypt, written with `htpasswd -B`) and, for
the Bearer flow, a token server written here (JWT RS256 signed with a test key whose
certificate the registry trusts). Every process started is stopped, pass or fail."""
import base64
import contextlib
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from mountlib import free_port

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
USER, PASSWORD = "publisher", "s3cret-publisher"
READER, READER_PASSWORD = "host", "s3cret-host"

CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {addr}
  secret: test-secret
{auth}
"""

HTPASSWD_AUTH = """auth:
  htpasswd:
    realm: annpack-test
    path: {htpasswd}
"""

TOKEN_AUTH = """auth:
  token:
    realm: {realm}
    service: annpack-registry
    issuer: annpack-test-issuer
    rootcertbundle: {cert}
"""


def available():
    return os.path.exists(REGISTRY)


def wait_port(port, proc, log, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not listen on {port}:\n{log.read_text()}")


def wait_in_netns(ns, url, proc, log, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {proc.returncode}:\n{log.read_text()}")
        r = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "curl", "-s", "-o", "/dev/null",
                            "-w", "%{http_code}", url], capture_output=True, text=True)
        if r.stdout.strip() not in ("", "000"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"docker-registry did not answer {url} in {ns}:\n{log.read_text()}")


def write_htpasswd(path, users):
    lines = []
    for user, password in users:
        r = subprocess.run(["htpasswd", "-nbB", "-C", "4", user, password], check=True,
                           capture_output=True, text=True)
        lines.append(r.stdout.strip())
    path.write_text("\n".join(lines) + "\n")


class Registry:
    """A running registry: url, root (its storage), blob_path(digest)."""

    def __init__(self, workdir, auth="htpasswd", token_server=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = self.dir / "storage"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = auth
        self.proc = None
        self.token_server = token_server
        self.log = self.dir / "registry.log"
        self.userpass = self.dir / "userpass"
        self.userpass.write_text(f"{USER}:{PASSWORD}\n")
        self.userpass.chmod(0o600)
        self.reader_pass = self.dir / "reader-userpass"
        self.reader_pass.write_text(f"{READER}:{READER_PASSWORD}\n")

    def start(self, addr=None, netns=None):
        """addr: where it listens (127.0.0.1:port); netns: the network namespace it runs in
        (then reachable only there and through the test's own links)."""
        auth = ""
        if self.auth == "htpasswd":
            htpasswd = self.dir / "htpasswd"
            write_htpasswd(htpasswd, [(USER, PASSWORD), (READER, READER_PASSWORD)])
            auth = HTPASSWD_AUTH.format(htpasswd=htpasswd)
        elif self.auth == "token":
            auth = TOKEN_AUTH.format(realm=self.token_server.url + "/token",
                                     cert=self.token_server.cert)
        cfg = self.dir / "config.yml"
        cfg.write_text(CONFIG.format(root=self.root, addr=addr or f"127.0.0.1:{self.port}",
                                     auth=auth))
        prefix = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
        self.proc = subprocess.Popen([*prefix, REGISTRY, "serve", str(cfg)],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        if netns:
            wait_in_netns(netns, f"http://127.0.0.1:{self.port}/v2/", self.proc, self.log)
        else:
            wait_port(self.port, self.proc, self.log)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def request(self, path, method="GET", accept=None, user=(USER, PASSWORD)):
        """A raw request with Basic auth (htpasswd registries): (status, headers, body)."""
        req = urllib.request.Request(self.url + path, method=method)
        if accept:
            req.add_header("Accept", accept)
        if user and self.auth == "htpasswd":
            req.add_header("Authorization", "Basic " + base64.b64encode(
                f"{user[0]}:{user[1]}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer:
    """The token endpoint of the distribution spec's Bearer flow: GET /token?service=&scope=
    with Basic credentials answers {"token": JWT} granting the scope's actions to the
    publisher, only pull to the reader, 401 to anyone else. Records every request."""

    def __init__(self, workdir):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        import datetime
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "annpack-test-token")])
        now = datetime.datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(1)
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert = self.dir / "token.crt"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def sign(self, claims):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        body = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = self.key.sign(body.encode(), padding.PKCS1v15(), hashes.SHA256())
        return body + "." + b64url(sig)

    def start(self):
        ts = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlparse
                q = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if (u, p) in ((USER, PASSWORD), (READER, READER_PASSWORD)):
                        user = u
                ts.requests.append({"path": self.path, "user": user, "auth": bool(auth)})
                if user is None:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in q.get("scope", []):
                    kind, name, actions = scope.split(":")
                    acts = actions.split(",")
                    if user == READER:
                        acts = [a for a in acts if a == "pull"]
                    access.append({"type": kind, "name": name, "actions": acts})
                now = int(time.time())
                tok = ts.sign({"iss": "annpack-test-issuer", "sub": user,
                               "aud": q.get("service", [""])[0], "exp": now + 300,
                               "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                               "access": access})
                body = json.dumps({"token": tok, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class CutProxy:
    """A TCP proxy in front of the registry that, while `cut_after` is set, closes a blob
    response's connection after that many body bytes (a cut transfer); records each request
    line and its Range header."""

    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cut_after = None
        self.oversize = None  # bytes appended to every blob body (a lying registry)
        self.seen = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.running = True
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            c.close()
            return
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(65536)
            if not d:
                break
            head += d
        first = head.split(b"\r\n", 1)[0].decode(errors="replace")
        rng = ""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"range:"):
                rng = line.split(b":", 1)[1].strip().decode()
        self.seen.append((first, rng))
        cut = self.cut_after if ("/blobs/sha256:" in first and first.startswith("GET")) else None
        # One request per connection, so each one is seen (and cut) on its own.
        h, _, rest = head.partition(b"\r\n\r\n")
        lines = [l for l in h.split(b"\r\n") if not l.lower().startswith(b"connection:")]
        u.sendall(b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + rest)

        def up():
            with contextlib.suppress(OSError):
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    u.sendall(d)
        threading.Thread(target=up, daemon=True).start()
        if self.oversize and "/blobs/sha256:" in first and first.startswith("GET"):
            data = b""
            with contextlib.suppress(OSError):
                while True:
                    d = u.recv(65536)
                    if not d:
                        break
                    data += d
            body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
            with contextlib.suppress(OSError):
                c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body +
                          b"\0" * self.oversize)
            for s in (c, u):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            return
        sent, hdr_done, buf = 0, False, b""
        with contextlib.suppress(OSError):
            while True:
                d = u.recv(65536)
                if not d:
                    break
                if cut is not None and not hdr_done:
                    buf += d
                    if b"\r\n\r\n" not in buf:
                        continue
                    h, body = buf.split(b"\r\n\r\n", 1)
                    if b" 200 " not in h.split(b"\r\n")[0] and b" 206 " not in h.split(b"\r\n")[0]:
                        cut = None
                    hdr_done = True
                    c.sendall(h + b"\r\n\r\n")
                    d = body
                if cut is not None:
                    d = d[:max(0, cut - sent)]
                    c.sendall(d)
                    sent += len(d)
                    if sent >= cut:
                        break
                else:
                    c.sendall(d)
        for s in (c, u):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def stop(self):
        self.running = False
        self.sock.close()


def sha256_hex(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
