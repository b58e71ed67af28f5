"""A live progress line for long runs, on every runner whose workers reach the run's output.

Workers (threads of this process, the local runner's worker processes, or the
SDK workers of a Flink or Spark cluster) count what they finish with
:func:`note`; each process writes its totals to a small file in the progress
folder at most once a second (every few seconds on an object store), and the
submitting process sums the files and redraws one line on stderr.

The progress folder is where the job writes its results (``facetag tag``: the
run's staging folder in the store), so workers that share no disk with the
submitting machine reach it wherever they reach the store, ``s3://`` included.
Beam's own counters cannot serve: a Flink or Spark job server reports a batch
job's metrics only once the job has ended (its ``GetJobMetrics`` answers none
while it runs; measured in bench/RESULTS.md, issue 27), so they feed the summary
line alone.

The folder reaches the workers inside the DoFns that count: each takes
:func:`folder` when the pipeline is built (inside the open
:class:`ProgressReporter`) and hands it to :func:`report_to` in its ``setup``.
Workers started by a cluster's SDK worker pool do not inherit the submitting
process's environment, so an environment variable would not reach them.
"""

import json
import os
import sys
import tempfile
import threading
import time

from facetag.io.files import delete_tree, filesystems, is_remote, join, write_atomically

INTERVAL = 1.0
#: On an object store each note is a PUT and each redraw a listing: fewer of them.
REMOTE_INTERVAL = 3.0

_counts = {}
_written_counts = {}
_written = [0.0]
_folder = [None]
_lock = threading.Lock()


PROGRESS_HELP = "show the progress line on stderr even when it is not a terminal (local runners)"


def add_progress_argument(parser):
    """``--progress``, for the jobs and commands that draw the progress line (ProgressReporter)."""
    parser.add_argument("--progress", action="store_true", help=PROGRESS_HELP)


def folder():
    """The progress folder of the reporter open in this process (None when no line is drawn): what a counting
    DoFn takes when it is built and passes to :func:`report_to` in its ``setup``."""
    return _folder[0]


def report_to(path):
    """Make :func:`note` in this worker process write to ``path`` (a DoFn's ``setup``; None: to nowhere)."""
    if path is not None and not is_remote(path) and not os.path.isdir(path):
        path = None  # another machine's folder, or a run already over
    with _lock:
        if path != _folder[0]:  # a worker process kept for the next job counts that job afresh
            _count_for(path)


def _count_for(path):
    """Start this process's counts afresh, noted to ``path`` (hold _lock)."""
    _folder[0] = path
    _counts.clear()
    _written_counts.clear()


def note(**increments):
    """Add to this process's counts (``listed``, ``done``, ``faces``, ``failed``); cheap when no one watches."""
    folder = _folder[0]
    if not folder:
        return
    with _lock:
        for key, n in increments.items():
            _counts[key] = _counts.get(key, 0) + n
        if time.monotonic() - _written[0] < (REMOTE_INTERVAL if is_remote(folder) else INTERVAL):
            return
    flush()


def flush():
    """Write this process's counts now, if it has any not yet written (a DoFn's ``finish_bundle``: the last
    notes of a bundle would otherwise wait for the next one, which may never come)."""
    folder = _folder[0]
    with _lock:
        if not folder or _counts == _written_counts:
            return
        _written[0] = time.monotonic()
        snapshot = dict(_counts)
        _written_counts.clear()
        _written_counts.update(snapshot)
    try:
        write_atomically(join(folder, f"{_process_name()}.json"), json.dumps(snapshot))
    except Exception:  # noqa: BLE001 - the run finished and its progress folder is gone; a note is never worth a photo
        pass


def _process_name():
    """This worker process's name in the progress folder: pids of different machines can be equal."""
    return f"{os.uname().nodename}-{os.getpid()}"


class ProgressReporter:
    """Context manager: while open, draws the progress line (if stderr is a terminal, or ``force``).

    ``folder``: where the workers write their notes (local or remote; made and deleted by the reporter), for
    example beside the run's results; default a new local temporary folder."""

    def __init__(self, force=False, stream=None, folder=None):
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.folder = folder

    def __enter__(self):
        if not self.enabled:
            return self
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="facetag-progress-")
        elif not is_remote(self.folder):
            os.makedirs(self.folder, exist_ok=True)
        with _lock:
            _count_for(self.folder)
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
        self._draw()  # the counts at the end: the workers flush their notes as their bundles finish
        _folder[0] = None
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
        delete_tree(self.folder)

    drawn = False

    def _draw_until_stopped(self):
        while not self.stop.wait(REMOTE_INTERVAL if is_remote(self.folder) else INTERVAL):
            self._draw()

    def _draw(self):
        line = self.line(self.totals(), time.monotonic() - self.started)
        if line:
            self.stream.write("\r" + line.ljust(100))
            self.stream.flush()
            self.drawn = True

    def totals(self):
        with _lock:  # this process's own counts, live (its file lags by up to a second)
            totals = dict(_counts)
        for path in self._notes():
            if os.path.basename(path) != f"{_process_name()}.json":
                try:
                    with (filesystems().open(path) if is_remote(path) else open(path, "rb")) as f:
                        for key, n in json.loads(f.read()).items():
                            totals[key] = totals.get(key, 0) + n
                except Exception:  # noqa: BLE001 - a note being replaced, or gone: the next redraw reads it
                    continue
        return totals

    def _notes(self):
        try:
            if is_remote(self.folder):
                return [m.path for m in filesystems().match([join(self.folder, "*.json")])[0].metadata_list]
            return [os.path.join(self.folder, n) for n in os.listdir(self.folder) if n.endswith(".json")]
        except Exception:  # noqa: BLE001 - nothing written yet, or the store briefly unreachable: no line now
            return []

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
