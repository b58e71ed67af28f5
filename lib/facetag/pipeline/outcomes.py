"""The outcomes of an input photo: faces, no face, or a failure with its reason (the store's values)."""

from facetag.archive.tables import FACES, FAILED, NO_FACE  # noqa: F401 - re-exported for the pipeline


def failure(source, reason):
    return {"source": source, "reason": reason}
