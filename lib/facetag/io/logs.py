"""Where a facetag program's messages go: its own notices to stderr as plain lines, every library's to a log file.

The log file, ``$FACETAG_CACHE/logs/facetag-<time>-<pid>.log``, is made only when something is written to
it; a one-line error names it for the full trace (facetag.pipeline.running, facetag.web).
"""

import datetime
import logging
import os
import sys

from facetag.io.cachedir import default_cache_dir

_log_path = [None]


def log_file():
    """This process's log file, ``$FACETAG_CACHE/logs/facetag-<time>-<pid>.log`` (made when first written)."""
    if _log_path[0] is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        _log_path[0] = os.path.join(default_cache_dir(), "logs", f"facetag-{stamp}-{os.getpid()}.log")
    return _log_path[0]


class _DelayedFileHandler(logging.FileHandler):
    """A FileHandler whose folder, like its file, is made only when a record is written."""

    def _open(self):
        os.makedirs(os.path.dirname(self.baseFilename), exist_ok=True)
        return super()._open()


def send_logs_to_file(stream=None):
    """The logging of a program that runs jobs (the command line, a job's ``__main__``): facetag's own notices
    as plain lines on stderr, every other library's warnings (Beam's job messages, the runners') to
    :func:`log_file`, which stays unwritten when there are none."""
    own = logging.getLogger("facetag")
    own.handlers = [logging.StreamHandler(stream or sys.stderr)]
    own.handlers[0].setFormatter(logging.Formatter("%(message)s"))
    own.propagate = False
    to_file = _DelayedFileHandler(log_file(), delay=True)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[to_file], force=True)
