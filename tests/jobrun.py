"""Run a facetag Beam job as a user would: a fresh process, its peak memory measured."""

import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_job(module, args, env=None, timeout=300):
    """``python -m module args`` -> (exit status, stdout, stderr, the process's peak resident memory in MiB,
    its CPU seconds)."""
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
        return proc.returncode, out.read(), err.read(), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
