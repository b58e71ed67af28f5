"""Test-only fault points: a test makes a run die, raise or stall at a chosen stage to prove nothing is lost.

``FACETAG_TEST_KILL_AT=<stage>`` kills the run's whole process group (SIGKILL, as
an out-of-memory killer or a cluster pre-emption would) the first time the run
reaches ``<stage>``; ``FACETAG_TEST_KILL_AFTER=<n>`` delays that to the n-th time.

``FACETAG_FAULTS``, e.g. ``detect=0.3,encode=0.3,stall=*slow*``, makes the
detector or the encoder raise :class:`InjectedFault`, or a photo stall:

- ``detect=F``: a bundle holding a photo whose name hashes below F raises when
  it finishes, after all its outputs, the first time; ``encode=F``: a batch of
  face crops holding one whose pixels hash below F raises the first time.
  Marker files in ``FACETAG_FAULTS_DIR`` (shared by the worker processes of
  one machine) let a retry through, so a runner that retries bundles must give
  a clean run's output;
- ``stall=PATTERN``: decoding a photo whose name matches the glob PATTERN
  sleeps ``FACETAG_FAULTS_STALL_S`` seconds (default 10), to test the per-photo
  time budget.

Environment variables reach every worker process a runner starts on this
machine. Unset, a fault point costs one dictionary lookup.
"""

import fnmatch
import hashlib
import os
import signal
import threading
import time

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


ENV, DIR_ENV, STALL_ENV = "FACETAG_FAULTS", "FACETAG_FAULTS_DIR", "FACETAG_FAULTS_STALL_S"


class InjectedFault(RuntimeError):
    """Raised on purpose by the fault-injection switch."""


def _settings():
    spec = os.environ.get(ENV)
    if not spec:
        return {}
    return dict(item.split("=", 1) for item in spec.split(",") if item)


def chosen(stage, key, fraction=None):
    """Whether ``key`` (bytes) is among the ``fraction`` of inputs that ``stage`` fails on."""
    fraction = float(_settings().get(stage, 0)) if fraction is None else fraction
    digest = hashlib.sha256(stage.encode() + b"\0" + key).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def maybe_fail(stage, keys):
    """Raise InjectedFault if one of ``keys`` (bytes) is chosen for ``stage`` and was not failed on before."""
    settings = _settings()
    if stage not in settings:
        return
    folder = os.environ[DIR_ENV]
    fresh = []
    for key in keys:
        if chosen(stage, key, float(settings[stage])):
            marker = os.path.join(folder, f"{stage}-{hashlib.sha256(key).hexdigest()[:32]}")
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                fresh.append(marker)
            except FileExistsError:
                pass
    if fresh:
        raise InjectedFault(f"injected {stage} fault ({len(fresh)} of {len(keys)} inputs chosen; {ENV} is set)")


def maybe_stall(source):
    pattern = _settings().get("stall")
    if pattern and fnmatch.fnmatch(source, pattern):
        time.sleep(float(os.environ.get(STALL_ENV, 10)))
