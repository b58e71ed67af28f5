"""The three outcomes of an input photo: faces, no face, or a failure with its reason."""

FAILED = "failed"
NO_FACE = "no_face"


def failure(source, reason):
    return {"source": source, "reason": reason}
