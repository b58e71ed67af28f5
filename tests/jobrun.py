"""Run a facetag Beam job as a user would: a fresh process, its peak memory measured."""

import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_job(module, args, env=None, timeout=300):
    """``python -m module args`` -> (exit status, stdout, stderr, the process's peak resident memory in MiB,
    its CPU seconds).

    The peak is the program's own (``VmHWM`` of its address space, read while it runs, every 20 ms), not
    wait4's ``ru_maxrss``: that one also counts the test process's memory, which the child holds between
    fork and exec (after the TensorFlow tests, gigabytes that facetag never used)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env={**os.environ, **(env or {})},
                                stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + timeout
        peak_kib = 0
        while True:
            peak_kib = max(peak_kib, _peak_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"{module} still running after {timeout} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), peak_kib / 1024, usage.ru_utime + usage.ru_stime


def _peak_kib(pid):
    """The process's peak resident memory so far (VmHWM), 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0
