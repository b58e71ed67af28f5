"""facetag: tag the faces in photo archives.

The flat API::

    import facetag
    faces = facetag.find_faces("group.jpg")            # boxes, scores, landmarks, encodings
    facetag.verify("a.jpg", "b.jpg").same                # 1:1
    gallery = facetag.Gallery.from_folder("people/")     # people/Name/*.jpg
    facetag.identify("group.jpg", gallery)               # 1:K, "unknown" past the threshold
    facetag.triplet_loss(None, (anchor, positive, negative))  # FaceNet's loss (TensorFlow)
"""

from facetag.api import find_faces, identify, verify, verify_claim
from facetag.errors import FaceTagError, ImageError, ModelMismatchError
from facetag.identity.gallery import Gallery
from facetag.identity.matching import UNKNOWN
from facetag.io.images import load_image
from facetag.vision.analyzer import Face, FaceAnalyzer
from facetag.vision.models import DEFAULT_MODEL, available_models, load_model


def __getattr__(name):
    # The triplet loss needs TensorFlow; importing facetag alone should not load it.
    if name == "triplet_loss":
        from facetag.learn.triplet import triplet_loss

        return triplet_loss
    raise AttributeError(f"module 'facetag' has no attribute {name!r}")


__all__ = [
    "DEFAULT_MODEL",
    "Face",
    "FaceAnalyzer",
    "FaceTagError",
    "Gallery",
    "ImageError",
    "ModelMismatchError",
    "UNKNOWN",
    "available_models",
    "find_faces",
    "identify",
    "load_image",
    "load_model",
    "triplet_loss",
    "verify",
    "verify_claim",
]
