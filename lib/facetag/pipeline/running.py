"""A job's pipeline run to its end: a failure told in one line, a stopped run's job cancelled on its runner.

On a cluster a failure arrives as some 150 lines of Java and Python traceback; the user needs the step
that failed and why. :func:`running` turns any failure of a running pipeline into :class:`JobFailed`
("<step>: <cause> (the full trace is in LOG)") and writes the whole trace to this process's log file
(facetag.io.logs.log_file), where facetag.io.logs.send_logs_to_file also sends every library's log records. Ctrl-C or
SIGTERM while a job runs on a job server (Flink, Spark, any portable runner) cancels that job before the
process stops, so nothing goes on running on the cluster for a submitter that is gone.
"""

import contextlib
import datetime
import os
import re
import signal
import sys
import threading
import traceback

from facetag.errors import FaceTagError
from facetag.io.logs import log_file, send_logs_to_file
from facetag.pipeline.flink import cancel_flink_job, waited

#: How long a cancelled job may take to reach a final state before the submitter gives up waiting.
CANCEL_WAIT_S = 30
_TERMINAL = {"DONE", "FAILED", "CANCELLED", "DRAINED", "UPDATED"}
_WHILE_RUNNING = re.compile(r"\s*\[while running '([^']+)'\]")
#: The last line of a Python traceback ("botocore.exceptions.NoCredentialsError: Unable to locate ...").
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Fault|Exit|Interrupt)\b:? ?.*$")


class JobFailed(FaceTagError):
    """A job's pipeline failed while it ran: ``step`` (the Beam step's label), ``cause``, and ``log``, the file
    holding the full trace."""

    def __init__(self, step, cause, log):
        self.step, self.cause, self.log = step, cause, log
        where = f" (the full trace is in {log})" if log else ""
        super().__init__(f"{step}: {cause}{where}" if step else f"{cause}{where}")


class JobInterrupted(FaceTagError):
    """The user stopped a run (Ctrl-C, SIGTERM); ``str`` says what became of its job."""


def job_main(run):
    """A job module's ``__main__``: ``run()`` with the command line's logging, errors and exit codes (0 done, 1 an
    error told in one line, 130 interrupted)."""
    send_logs_to_file()
    try:
        run()
    except JobInterrupted as e:
        print(f"facetag: {e}", file=sys.stderr)
        sys.exit(130)
    except FaceTagError as e:
        print(f"facetag: error: {e}", file=sys.stderr)
        sys.exit(1)


@contextlib.contextmanager
def running(pipeline):
    """``with running(pipeline) as p:`` builds the pipeline in the block, then runs it to its end, as ``with
    pipeline as p`` does; a failure of the run raises :class:`JobFailed`, Ctrl-C or SIGTERM cancels the job
    and raises :class:`JobInterrupted`. Errors raised while the pipeline is built pass unchanged."""
    built = False
    with _sigterm_interrupts():
        try:
            with pipeline as p:
                yield p
                built = True
        except KeyboardInterrupt:
            raise JobInterrupted(_cancel(getattr(pipeline, "result", None), pipeline.options)) from None
        except FaceTagError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever a runner raises, the user gets one line
            if not built:
                raise
            raise failure(e) from None


def failure(error):
    """:class:`JobFailed` for an exception a running pipeline raised; its whole text and trace go to the log."""
    text = "".join(traceback.format_exception(error))
    log = log_file()
    try:
        os.makedirs(os.path.dirname(log), exist_ok=True)
        with open(log, "a") as f:
            f.write(f"{datetime.datetime.now().isoformat(timespec='seconds')} the job failed:\n{text}\n")
    except OSError:
        log = None
    step, cause = describe(error)
    return JobFailed(step, cause, log)


def describe(error):
    """``(step, cause)`` of a pipeline's failure: the innermost Beam step named in its text (or None) and the
    last Python exception line of its text, from the portable runner's report of a worker's traceback too."""
    text = str(error)
    steps = _WHILE_RUNNING.findall(text)
    lines = [line.strip() for line in text.splitlines()]
    python = [line for line in lines if _EXCEPTION_LINE.match(line) and not line.startswith(("java.", "org.", "io."))]
    if python:
        cause = python[-1]
    else:
        cause = f"{type(error).__name__}: {lines[0]}" if text.strip() else type(error).__name__
    cause = _WHILE_RUNNING.sub("", cause).strip()
    if cause.startswith("facetag."):  # facetag's own errors say what to do: their class name adds nothing
        cause = cause.split(": ", 1)[-1]
    return (steps[-1] if steps else None), cause


def _cancel(result, options):
    """Cancel ``result``'s job if it runs on a job server, waiting up to CANCEL_WAIT_S for it to stop; what
    became of it, in words."""
    job = getattr(result, "_job_id", None)
    if result is None or job is None:
        return "interrupted"
    try:
        if str(result.state) in _TERMINAL:
            return f"interrupted; the job {job} had already ended"
        result.cancel()
        flink = options.get_all_options().get("flink_master")
        if flink and flink != "[auto]":
            return f"interrupted; {cancel_flink_job(flink, job, CANCEL_WAIT_S)}"
        if not waited(lambda: str(result.state) in _TERMINAL, CANCEL_WAIT_S):
            return (f"interrupted; the job {job} was asked to cancel but had not stopped after {CANCEL_WAIT_S} s: "
                    "check the runner's UI")
        return f"interrupted; the job {job} was cancelled on its runner ({result.state})"
    except Exception as e:  # noqa: BLE001 - the job service may be gone; the user must know
        return f"interrupted; cancelling the job {job} failed ({e}): cancel it in the runner's UI"


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, while the block runs (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
