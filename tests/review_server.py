"""``facetag review --serve`` run as a user runs it, for the tests and benchmarks that talk to it over HTTP."""

import signal
import subprocess
import sys

import requests


class Server:
    """``facetag review STORE --serve`` in its own process, stopped with Ctrl-C (SIGINT) at the end."""

    def __init__(self, store, *options):
        self.process = subprocess.Popen([sys.executable, "-m", "facetag.cli", "review", store, "--serve", *options],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert "/?token=" in line, line + self.process.stderr.read()
        self.url = line.split(" is at ")[1].split()[0]
        self.base, self.token = self.url.split("/?token=")
        self.port = int(self.base.rsplit(":", 1)[1])

    def get(self, path, timeout=60, **kw):
        return requests.get(self.base + path, headers={"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})},
                            timeout=timeout, allow_redirects=False, **kw)

    def post(self, path, body=None, timeout=60, **kw):
        body = {} if body is None else body
        return requests.post(self.base + path, json=body, timeout=timeout, allow_redirects=False,
                             headers={"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}, **kw)

    def stop(self, timeout=30):
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err
