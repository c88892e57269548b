"""A loopback embedding server for the tests (the real models cannot run here).

It speaks the three shapes annpack's HTTP embedders use:
  OpenAI  POST /v1/embeddings  {"model", "input": [..], "encoding_format"?, "dimensions"?}
          -> {"object":"list","model":M,"data":[{"index":i,"embedding":[..] | "base64"}]}
  TEI     GET /info -> {"model_id","model_sha","max_client_batch_size","max_input_length"}
          POST /embed {"inputs": [..], "normalize"?, "truncate"?} -> [[..], ..]
  Ollama  POST /api/embed {"model","input": [..]} -> {"model":M,"embeddings":[[..], ..]}

Vectors are deterministic: word features hashed with SHA-256 into DIM dimensions, seeded by
the model name, so texts sharing words are near and another "model" gives other vectors. They
are NOT normalised (annpack normalises on its side, and the tests check that it does).

Switches (a JSON POST to /_control, or the constructor) change behaviour for the following
requests: fail_429=N (N replies 429 with Retry-After: 0), fail_500=N, fail_503=N,
max_batch=N (a batch larger than N gets 413), slow=S (seconds of delay per request),
wrong_dim=1, wrong_count=1, bad_base64=1, nan=1, status=N (every embedding request answers N
with an error message), model=M (the model it serves: switching it changes every vector),
variant=S (other vectors under the same model name: another revision behind the name),
require_key=K (401 unless "Authorization: Bearer K"), reverse=1 (OpenAI data in reverse
order, with correct indexes), tei_max_batch=N (what /info reports).
It records every embedding request (path, headers, batch size) in .requests. stop() closes
the listening socket, so later requests get "connection refused".

Run standalone: /usr/bin/python3 tests/embed_server.py [--port P] [--dim D] [--model M]."""
import base64
import hashlib
import http.server
import json
import math
import re
import socket
import socketserver
import struct
import sys
import threading
import time


def embed_text(text, dim, model):
    v = [0.0] * dim
    words = re.findall(r"[a-z0-9]+", text.lower()) or ["<empty>"]
    for w in words:
        h = hashlib.sha256((model + "\x1f" + w).encode()).digest()
        for k in range(4):
            x = int.from_bytes(h[4 * k:4 * k + 4], "little")
            v[x % dim] += (1.0 if (x >> 31) else -1.0) * (1.0 / (k + 1))
    # a fixed non-unit scale, so a client that does not normalise gets wrong scores
    return [3.0 * x for x in v]


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class EmbedServer:
    def __init__(self, dim=32, model="test-model", port=0, tls=None, **switches):
        """tls: (certfile, keyfile[, client_ca]) serves https; with client_ca a client
        certificate signed by it is required."""
        self.dim = dim
        self.model = model
        self.lock = threading.Lock()
        self.requests = []
        self.conns = set()  # open client connections, closed by stop()
        self.switches = {}
        self.set(**switches)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                # headers and body go out in two writes: without this, Nagle's algorithm and
                # the client's delayed ACK add 40 ms to every reply
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with owner.lock:
                    owner.conns.add(self.request)

            def reply(self, code, obj, headers=()):
                body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/info":
                    return self.reply(200, {"model_id": owner.model, "model_sha": "rev-" + owner.model,
                                            "max_client_batch_size": owner.switches.get("tei_max_batch", 16),
                                            "max_input_length": 512})
                if self.path == "/_requests":
                    with owner.lock:
                        return self.reply(200, owner.requests)
                self.reply(404, {"error": "not found: " + self.path})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                if self.path == "/_control":
                    owner.set(**json.loads(raw))
                    return self.reply(200, {"ok": True})
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.reply(400, {"error": "body is not JSON"})
                owner.handle(self, body, len(raw))

        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.scheme = "http"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            if len(tls) > 2 and tls[2]:
                ctx.load_verify_locations(tls[2])
                ctx.verify_mode = ssl.CERT_REQUIRED
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def set(self, **switches):
        with self.lock:
            for k, v in switches.items():
                if k == "model":
                    self.model = v
                elif k == "dim":
                    self.dim = v
                elif v in (None, 0, False):
                    self.switches.pop(k, None)
                else:
                    self.switches[k] = v

    def embedding_requests(self):
        with self.lock:
            return [r for r in self.requests if r["path"] != "/info"]

    def clear(self):
        with self.lock:
            self.requests.clear()

    def _take(self, name):
        """Consumes one count of a fail_* switch; True when this request should fail."""
        with self.lock:
            left = self.switches.get(name, 0)
            if left:
                self.switches[name] = left - 1
                return True
        return False

    def handle(self, h, body, nbytes):
        path = h.path
        if path in ("/v1/embeddings", "/embeddings"):
            shape, inputs = "openai", body.get("input")
        elif path == "/embed":
            shape, inputs = "tei", body.get("inputs")
        elif path == "/api/embed":
            shape, inputs = "ollama", body.get("input")
        else:
            return h.reply(404, {"error": "no route " + path})
        if isinstance(inputs, str):
            inputs = [inputs]
        with self.lock:
            self.requests.append({"path": path, "n": len(inputs or []), "bytes": nbytes,
                                  "auth": h.headers.get("Authorization"),
                                  "content_type": h.headers.get("Content-Type"),
                                  "user_agent": h.headers.get("User-Agent"),
                                  "model": body.get("model"), "inputs": inputs,
                                  "encoding_format": body.get("encoding_format"),
                                  "dimensions": body.get("dimensions")})
            sw = dict(self.switches)
            model, dim = self.model, self.dim
        if sw.get("slow"):
            time.sleep(float(sw["slow"]))
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return h.reply(400, {"error": "input must be a list of strings"})
        if sw.get("require_key") and h.headers.get("Authorization") != "Bearer " + sw["require_key"]:
            return h.reply(401, {"error": {"message": "Incorrect API key provided"}})
        if sw.get("status"):
            return h.reply(int(sw["status"]), {"error": {"message": f"switched to {sw['status']}"}})
        if self._take("fail_429"):
            return h.reply(429, {"error": "rate limited"}, [("Retry-After", "0")])
        if self._take("fail_500"):
            return h.reply(500, {"error": "internal"})
        if self._take("fail_503"):
            return h.reply(503, {"error": "overloaded"})
        if sw.get("max_batch") and len(inputs) > int(sw["max_batch"]):
            return h.reply(413, {"error": f"batch of {len(inputs)} exceeds {sw['max_batch']}"})
        if shape == "openai" and body.get("model") not in (None, model):
            return h.reply(404, {"error": {"message": f"model {body.get('model')} not found"}})
        if shape == "openai" and body.get("dimensions"):
            dim = int(body["dimensions"])
        vecs = [embed_text(t, dim, model + sw.get("variant", "")) for t in inputs]
        if sw.get("wrong_dim"):
            vecs = [v[:-1] for v in vecs]
        if sw.get("wrong_count"):
            vecs = vecs[:-1] if len(vecs) > 1 else vecs + vecs
        if sw.get("nan") and vecs:
            vecs[0][0] = math.nan
        if shape == "tei":
            if sw.get("nan"):
                return h.reply(200, json.dumps(vecs).replace("NaN", "NaN").encode())
            return h.reply(200, vecs)
        if shape == "ollama":
            return h.reply(200, {"model": model, "embeddings": vecs})
        data = []
        for i, v in enumerate(vecs):
            if body.get("encoding_format") == "base64":
                e = base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()
                if sw.get("bad_base64"):
                    e = "!!" + e[2:]
            else:
                e = v
            data.append({"object": "embedding", "index": i, "embedding": e})
        if sw.get("reverse"):
            data.reverse()
        h.reply(200, {"object": "list", "model": model, "data": data,
                      "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    def stop(self):
        """Stops listening and drops every open connection (kept-alive ones too): later
        requests get "connection refused"."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns.clear()


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--model", default="test-model")
    a = ap.parse_args()
    s = EmbedServer(dim=a.dim, model=a.model, port=a.port)
    print(s.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
