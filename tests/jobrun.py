"""Run a facetag Beam job as a user would (a fresh process) and read its three outcomes back."""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_job(module, args, env=None, timeout=300):
    """``python -m module args`` -> (exit status, stdout, stderr, the process's peak resident memory in MiB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env={**os.environ, **(env or {})},
                                stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # wait4: the child's own peak RSS
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"{module} still running after {timeout} s")
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), usage.ru_maxrss / 1024


def read_outcomes(out_dir):
    """(faces rows sorted by face_id, no_face records, failed records) of an encode job's output folder."""
    files = sorted(glob.glob(os.path.join(out_dir, "faces-*.parquet")))
    faces = [row for f in files for row in pq.read_table(f).to_pylist()]
    outcomes = {}
    for name in ("no_face", "failed"):
        path = os.path.join(out_dir, f"{name}.jsonl")
        with open(path, encoding="utf-8") as f:
            outcomes[name] = [json.loads(line) for line in f if line.strip()]
    return sorted(faces, key=lambda r: r["face_id"]), outcomes["no_face"], outcomes["failed"]
