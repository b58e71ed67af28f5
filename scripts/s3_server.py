"""A local S3-API server for facetag's users and tests: moto's standalone server, writes made atomic.

    python scripts/s3_server.py up [--dir out/s3] [--port 9000] [--bucket facetag ...]
        starts the server on 127.0.0.1 (unless this folder's server already runs), waits until it
        answers, creates the buckets, and prints the ``export`` lines for a shell:
        ``eval "$(make -s s3-up)"``
    python scripts/s3_server.py down [--dir out/s3]
        stops exactly the server that ``up`` started (its pid file), and is safe to run twice
    python scripts/s3_server.py stats [--dir out/s3]
        the server's request and byte counters, as JSON (for benchmarks)

The server is moto's (``moto[server]``, PyPI), the S3 API over HTTP in a separate process. Its state
lives in that process's memory: ``down`` forgets every bucket. moto checks a conditional write
(``If-None-Match: *``, ``If-Match: <etag>``) and then writes, as two steps: two requests at once can
both pass the check (measured: one lost If-Match update in 3,996 contended increments). This server
therefore runs every request that changes objects (PUT, POST, DELETE) one at a time, which makes
each conditional write atomic, as on S3 itself; reads run in parallel.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"
ACCESS_KEY, SECRET_KEY, REGION = "facetag", "facetag-secret", "us-east-1"
STATE = "server.json"
STATS_PATH = "/_facetag_s3/stats"


class SerialWrites:
    """WSGI middleware: one changing request at a time (so moto's check-then-write is atomic), and counters."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.counts_lock = threading.Lock()
        self.requests = {}
        self.by_prefix = {}
        self.bytes_in = 0
        self.bytes_out = 0

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        if environ.get("PATH_INFO") == STATS_PATH:
            with self.counts_lock:
                body = json.dumps({"requests": self.requests, "by_prefix": self.by_prefix,
                                   "bytes_in": self.bytes_in, "bytes_out": self.bytes_out}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        # Also by bucket and first key segment, so a test can tell which objects a run read: "GET
        # /facetag/photos/..." reads objects below photos/, "HEAD /facetag/photos" asks for the object
        # "photos" itself, "GET /facetag" lists the bucket.
        parts = environ.get("PATH_INFO", "").split("/")
        where = f"{method} {'/'.join(parts[:3])}{'/...' if len(parts) > 3 else ''}"
        with self.counts_lock:
            self.requests[method] = self.requests.get(method, 0) + 1
            self.by_prefix[where] = self.by_prefix.get(where, 0) + 1
            self.bytes_in += int(environ.get("CONTENT_LENGTH") or 0)
        if method in ("PUT", "POST", "DELETE"):
            with self.lock:
                chunks = list(self.app(environ, start_response))
        else:
            chunks = self.app(environ, start_response)
        return self._counted(chunks)

    def _counted(self, chunks):
        try:
            for chunk in chunks:
                with self.counts_lock:
                    self.bytes_out += len(chunk)
                yield chunk
        finally:
            if hasattr(chunks, "close"):
                chunks.close()


def serve(port):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = SerialWrites(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, port, app, threaded=True, request_handler=MotoRequestHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def _state(folder):
    try:
        with open(os.path.join(folder, STATE)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def _alive(state):
    """True if the pid in ``state`` is still this folder's server (not a pid reused by another program)."""
    try:
        with open(f"/proc/{state['pid']}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except OSError:
        return False
    return b"serve" in cmdline and str(state["port"]).encode() in cmdline and os.path.abspath(__file__).encode() in cmdline


def _answers(port):
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{STATS_PATH}", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def exports(port):
    return {"AWS_ENDPOINT_URL": f"http://{HOST}:{port}", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
            # delta-rs (Rust object_store) refuses plain http unless told; boto3 and Beam need nothing more.
            "AWS_ALLOW_HTTP": "true"}


def up(folder, port, buckets, timeout=60):
    os.makedirs(folder, exist_ok=True)
    state = _state(folder)
    proc = None
    if state is None or not _alive(state):
        if not port or not _port_free(port):
            port = _free_port()
        log = open(os.path.join(folder, "server.log"), "ab")
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve", "--port", str(port)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        state = {"pid": proc.pid, "port": port}
        with open(os.path.join(folder, STATE), "w") as f:
            json.dump(state, f)
    deadline = time.time() + timeout
    while not _answers(state["port"]):  # a busy server may answer slowly: it is waited for, never doubled
        # Just started: its /proc cmdline is the parent's until it has exec'd, so ask the child itself.
        running = proc.poll() is None if proc else _alive(state)
        if not running or time.time() > deadline:
            if proc and running:
                proc.kill()
            raise SystemExit(f"s3-up: the S3 server did not start or does not answer; "
                             f"see {os.path.join(folder, 'server.log')}")
        time.sleep(0.1)
    for bucket in buckets:
        request = urllib.request.Request(f"http://{HOST}:{state['port']}/{bucket}", method="PUT")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as e:
            if e.code != 409:  # BucketAlreadyOwnedByYou
                raise
    return exports(state["port"])


def down(folder, timeout=10):
    state = _state(folder)
    path = os.path.join(folder, STATE)
    if state is None:
        return False
    stopped = False
    if _alive(state):
        os.kill(state["pid"], signal.SIGTERM)
        deadline = time.time() + timeout
        while os.path.exists(f"/proc/{state['pid']}") and time.time() < deadline:
            try:  # reap it if it is our child; else it is reaped by init
                os.waitpid(state["pid"], os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if os.path.exists(f"/proc/{state['pid']}"):
            os.kill(state["pid"], signal.SIGKILL)
        stopped = True
    os.remove(path)
    return stopped


def stats(folder):
    state = _state(folder)
    if state is None:
        raise SystemExit("no S3 server runs for this folder")
    with urllib.request.urlopen(f"http://{HOST}:{state['port']}{STATS_PATH}", timeout=5) as r:
        return json.load(r)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--port", type=int, required=True)
    for name in ("up", "down", "stats"):
        p = sub.add_parser(name)
        p.add_argument("--dir", default=os.environ.get("S3_DIR", "out/s3"))
        if name == "up":
            p.add_argument("--port", type=int, default=int(os.environ.get("S3_PORT", 9000)),
                           help="9000 by default; 0, or a port in use: a free one")
            p.add_argument("--bucket", nargs="*", default=(os.environ.get("S3_BUCKETS") or "facetag").split())
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port)
    elif args.command == "up":
        for key, value in up(args.dir, args.port, args.bucket).items():
            print(f"export {key}={value}")
    elif args.command == "down":
        print("S3 server stopped" if down(args.dir) else "no S3 server was running", file=sys.stderr)
    else:
        print(json.dumps(stats(args.dir)))


if __name__ == "__main__":
    main()
