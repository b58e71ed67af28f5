"""facetag's compiled MTCNN cascade against the mtcnn package it takes its networks from."""

import glob
import os

import numpy as np
import pytest

import facetag
from facetag.detection import DEFAULT_MIN_SCORE, DETECTION_MAX_SIDE, LANDMARK_NAMES, FaceDetector


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def stock():
    from mtcnn import MTCNN

    mtcnn = MTCNN()

    def detect(image):
        faces = [f for f in mtcnn.detect_faces(image, box_format="xyxy") if f["confidence"] >= DEFAULT_MIN_SCORE]
        return sorted(faces, key=lambda f: -f["confidence"])

    return detect


def iou(a, b):
    width, height = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def assert_same_faces(ours, theirs, name, searched_smaller=False):
    assert len(ours) == len(theirs), f"{name}: {len(ours)} faces, the mtcnn package finds {len(theirs)}"
    if searched_smaller:  # facetag searched a shrunk copy, the package the photo itself: same faces, not same pixels
        assert all(iou(face.box, reference["box"]) > 0.7 for face, reference in zip(ours, theirs)), name
        return
    for face, reference in zip(ours, theirs):
        # Same proposals through the same networks; float64 box arithmetic in another order moves a
        # corner by a pixel at most on these photos.
        np.testing.assert_allclose(face.box, reference["box"], atol=1, err_msg=name)
        assert face.score == pytest.approx(reference["confidence"], abs=1e-4)
        for point, landmark in zip(face.landmarks, LANDMARK_NAMES):  # the package rounds them to integers
            np.testing.assert_allclose(point, reference["keypoints"][landmark], atol=1.0, err_msg=name)


def test_same_faces_as_the_mtcnn_package_on_the_sample_photos(samples, detector, stock):
    paths = sorted(glob.glob(os.path.join(samples, "*", "*.*")) + glob.glob(os.path.join(samples, "gallery", "*", "*")))
    images = {path: facetag.load_image(path) for path in paths if os.path.isfile(path)}
    assert len(images) >= 4
    for path, image in images.items():
        assert_same_faces(detector.detect(image), stock(image), path, max(image.shape[:2]) > DETECTION_MAX_SIDE)


def test_same_faces_as_the_mtcnn_package_on_lfw_photos(lfw_dev, detector, stock):
    paths = sorted(glob.glob(os.path.join(lfw_dev, "images", "*", "*.jpg")))[:40]
    faces = 0
    for path in paths:
        image = facetag.load_image(path)
        theirs = stock(image)
        assert_same_faces(detector.detect(image), theirs, path)
        faces += len(theirs)
    assert faces >= len(paths)


@pytest.mark.parametrize("shape", [(5, 5, 3), (12, 12, 3), (13, 40, 3), (3000, 20, 3)])
def test_photos_too_small_or_thin_for_a_face(detector, shape):
    assert detector.detect(np.zeros(shape, np.uint8)) == []


def test_a_textured_photo_without_faces(detector):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert [d for d in detector.detect(noise) if d.score > 0.99] == []
