"""facetag: tag the faces in photo archives.

The flat API::

    import facetag
    faces = facetag.find_faces("group.jpg")            # boxes, scores, landmarks, encodings
    facetag.verify("a.jpg", "b.jpg").same                # 1:1
    gallery = facetag.Gallery.from_folder("people/")     # people/Name/*.jpg
    facetag.identify("group.jpg", gallery)               # 1:K, "unknown" past the threshold
    facetag.triplet_loss(None, (anchor, positive, negative))  # FaceNet's loss (TensorFlow)
"""

import logging
import os

# Before TensorFlow loads (training the head, converting the networks once per machine): its C++ notices
# (oneDNN banners) are not for the user. TF_CPP_MIN_LOG_LEVEL=0 shows them again.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _not_for_the_user(record):
    # Beam warns at import time that Google's BigQuery client is missing; facetag never uses BigQuery.
    return not record.getMessage().startswith("apitools not found")


logging.getLogger().addFilter(_not_for_the_user)

from facetag.vision.analyzer import Face, FaceAnalyzer  # noqa: E402
from facetag.api import find_faces, identify, verify, verify_claim  # noqa: E402
from facetag.errors import FaceTagError, ImageError, ModelMismatchError  # noqa: E402
from facetag.identity.gallery import Gallery  # noqa: E402
from facetag.io.images import load_image  # noqa: E402
from facetag.identity.matching import UNKNOWN  # noqa: E402
from facetag.vision.models import DEFAULT_MODEL, available_models, load_model  # noqa: E402


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
