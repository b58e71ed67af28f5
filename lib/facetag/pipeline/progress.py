"""A live progress line for long runs on the local runners and the local clusters.

Workers (threads of this process, the local runner's worker processes, or the
SDK workers of a local Flink or Spark cluster) count what they finish with
:func:`note`; each process writes its totals to a small file at most once a
second, and the submitting process sums the files and redraws one line on
stderr, at most once a second.

The folder reaches the workers inside the DoFns that count: each takes
:func:`folder` when the pipeline is built (inside the open
:class:`ProgressReporter`) and hands it to :func:`report_to` in its ``setup``.
Workers started by a cluster's SDK worker pool do not inherit the submitting
process's environment, so an environment variable would not reach them. The
files are only summed while the workers share the submitting machine's disk
(every local runner, ``make cluster-up``); on a real cluster the workers' notes
go nowhere, and Beam's counters show the same counts in the runner's UI.
"""

import json
import os
import sys
import tempfile
import threading
import time

from facetag.io.files import write_atomically

INTERVAL = 1.0

_counts = {}
_written = [0.0]
_folder = [None]
_lock = threading.Lock()


def folder():
    """The progress folder of the reporter open in this process (None when no line is drawn): what a counting
    DoFn takes when it is built and passes to :func:`report_to` in its ``setup``."""
    return _folder[0]


def report_to(path):
    """Make :func:`note` in this worker process write to ``path`` (a DoFn's ``setup``; None: to nowhere)."""
    if path is not None and not os.path.isdir(path):
        path = None  # another machine's folder, or a run already over
    _folder[0] = path


def note(**increments):
    """Add to this process's counts (``listed``, ``done``, ``faces``, ``failed``); cheap when no one watches."""
    folder = _folder[0]
    if not folder:
        return
    with _lock:
        for key, n in increments.items():
            _counts[key] = _counts.get(key, 0) + n
        now = time.monotonic()
        if now - _written[0] < INTERVAL:
            return
        _written[0] = now
        snapshot = dict(_counts)
    path = os.path.join(folder, f"{os.getpid()}.json")
    try:
        write_atomically(path, json.dumps(snapshot))
    except OSError:
        pass  # the run finished and its progress folder is gone


class ProgressReporter:
    """Context manager: while open, draws the progress line (if stderr is a terminal, or ``force``)."""

    def __init__(self, force=False, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.folder = None

    def __enter__(self):
        if not self.enabled:
            return self
        self.folder = tempfile.mkdtemp(prefix="facetag-progress-")
        _folder[0] = self.folder
        _counts.clear()
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._draw_until_stopped, name="facetag-progress", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if not self.enabled:
            return
        self.stop.set()
        self.thread.join()
        _folder[0] = None
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)

    drawn = False

    def _draw_until_stopped(self):
        while not self.stop.wait(INTERVAL):
            line = self.line(self.totals(), time.monotonic() - self.started)
            if line:
                self.stream.write("\r" + line.ljust(100))
                self.stream.flush()
                self.drawn = True

    def totals(self):
        with _lock:  # this process's own counts, live (its file lags by up to a second)
            totals = dict(_counts)
        for name in os.listdir(self.folder):
            if name.endswith(".json") and name != f"{os.getpid()}.json":
                try:
                    with open(os.path.join(self.folder, name)) as f:
                        for key, n in json.load(f).items():
                            totals[key] = totals.get(key, 0) + n
                except (OSError, ValueError):
                    continue
        return totals

    @staticmethod
    def line(totals, elapsed):
        listed, done = totals.get("listed", 0), totals.get("done", 0)
        if not listed:
            return "facetag: listing photos..." if elapsed > 2 else None
        rate = done / elapsed if elapsed > 0 else 0.0
        text = (f"facetag: {done:,}/{listed:,} photos ({rate:.1f}/s), {totals.get('faces', 0):,} faces, "
                f"{totals.get('failed', 0):,} failed")
        if rate > 0 and done < listed:
            left = (listed - done) / rate
            text += f", about {left / 60:.0f} min left" if left >= 90 else f", about {left:.0f} s left"
        return text
