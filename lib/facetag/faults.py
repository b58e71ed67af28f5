"""Test-only fault points: a test makes a run die at a chosen stage to prove nothing is lost.

``FACETAG_TEST_KILL_AT=<stage>`` kills the run's whole process group (SIGKILL, as
an out-of-memory killer or a cluster pre-emption would) the first time the run
reaches ``<stage>``; ``FACETAG_TEST_KILL_AFTER=<n>`` delays that to the n-th time.
Unset, a fault point costs one dictionary lookup.
"""

import os
import signal
import threading

_counts = {}
_lock = threading.Lock()


def kill_point(stage):
    if os.environ.get("FACETAG_TEST_KILL_AT") != stage:
        return
    with _lock:
        _counts[stage] = _counts.get(stage, 0) + 1
        if _counts[stage] < int(os.environ.get("FACETAG_TEST_KILL_AFTER", "1")):
            return
    os.killpg(os.getpgid(0), signal.SIGKILL)
