"""The ``facetag`` command line. Exit codes: 0 done, 1 a file could not be read or used (or a job failed), 2 usage
error, 130 interrupted (Ctrl-C, SIGTERM: a job running on a cluster is cancelled first)."""

import logging
import os
import sys

from facetag.cli.output import UsageError
from facetag.cli.parser import build_parser
from facetag.errors import FaceTagError
from facetag.pipeline.notices import hide_beam_notices
from facetag.io.logs import send_logs_to_file
from facetag.pipeline.running import JobInterrupted


def main(argv=None):
    hide_beam_notices()  # before a command imports Beam
    # TensorFlow's C++ notices (oneDNN banners) are not for the user (train, the first conversion of the
    # networks); TF_CPP_MIN_LOG_LEVEL=0 shows them again.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "beam", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    # facetag's own warnings as plain lines; the libraries' to a log file (Beam may have configured the root
    # logger at import time).
    send_logs_to_file()
    try:
        args.func(args)
    except UsageError as e:
        parser.error(str(e))
    except JobInterrupted as e:
        print(f"facetag: {e}", file=sys.stderr)
        return 130
    except (FaceTagError, FileNotFoundError) as e:
        print(f"facetag: error: {e}", file=sys.stderr)
        return 1
    return 0


def console():
    """The ``facetag`` command: :func:`main`, then exit without the interpreter's teardown.

    Everything is written and closed when main returns. The teardown would cost most of a second of
    module clean-up, and it stops Beam's daemon threads by unwinding them through native frames, which
    aborted about one run in ten ("terminate called without an active exception", exit status 134)."""
    try:
        code = main()
    except SystemExit as e:  # argparse's usage errors and --help; as Python itself exits for them
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
