"""Beam's log notices that are not for facetag's users, kept off the console by the programs that run jobs.

A library leaves logging alone when it is imported: the command line (facetag.cli), the jobs
(beam_jobs) and the encoder on a worker call :func:`hide_beam_notices` when they start.
"""

import logging

_NOT_FOR_THE_USER = (
    # Beam warns at import time that Google's BigQuery client is missing; facetag never uses BigQuery.
    "apitools not found",
    # Beam 2.77's RunInference cannot import its model manager without PyTorch, then warns at every model
    # load that it cannot read memory usage. Nothing is wrong for facetag's model.
    "Resource module is not available",
    # A JSON Lines output with no line is not written on an object store (pipeline.outputs.write_outcomes).
    "No shards found to finalize",
)
#: Loggers whose notices are filtered besides the root logger's (a filter holds only where it is attached).
_LOGGERS = ("", "apache_beam.io.filebasedsink")


def _for_the_user(record):
    return not record.getMessage().startswith(_NOT_FOR_THE_USER)


def hide_beam_notices():
    """Filter those notices out of the root logger (once per process). Call before apache_beam is imported."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _for_the_user not in logger.filters:
            logger.addFilter(_for_the_user)
