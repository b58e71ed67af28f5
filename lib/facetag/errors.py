"""The exceptions facetag raises on purpose, so callers can catch them by kind."""


class FaceTagError(Exception):
    """Base class of every error facetag raises about the user's input."""


class ImageError(FaceTagError):
    """An image could not be read: empty, truncated, not an image, or too large.

    ``source`` names the file (or the label given for in-memory bytes) and
    ``reason`` says what was wrong, so one line tells the user what to fix.
    """

    def __init__(self, source, reason):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"cannot read image {self.source}: {reason}")


class ModelMismatchError(FaceTagError):
    """Encodings made by different models were about to be compared."""
