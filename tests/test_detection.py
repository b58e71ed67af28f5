"""facetag's MTCNN cascade (LiteRT networks, NumPy glue) against the mtcnn package it takes its networks from."""

import glob
import os
import warnings

import numpy as np
import pytest

import facetag
from facetag.vision.detection import DETECTION_MAX_SIDE, LANDMARK_NAMES, FaceDetector


@pytest.fixture(scope="module")
def detector():
    """The detector as the library and the jobs run it: default settings, faces kept from DEFAULT_MIN_SCORE up."""
    return FaceDetector()


@pytest.fixture(scope="module")
def stock(detector):
    """The mtcnn package's faces that facetag's detector keeps too: every one scoring at least its min score."""
    from mtcnn import MTCNN

    mtcnn = MTCNN()

    def detect(image):
        faces = [f for f in mtcnn.detect_faces(image, box_format="xyxy") if f["confidence"] >= detector.min_score]
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
    """Every face either keeps, bystanders and low scores included: of these 40 photos' faces, 6 score between
    0.9 and 0.99 (from 0.909), where a cascade that differs from the package's would show first."""
    paths = sorted(glob.glob(os.path.join(lfw_dev, "images", "*", "*.jpg")))[:40]
    scores = []
    for path in paths:
        image = facetag.load_image(path)
        theirs = stock(image)
        assert_same_faces(detector.detect(image), theirs, path)
        scores += [f["confidence"] for f in theirs]
    assert len(scores) >= len(paths)
    assert sum(detector.min_score <= s < 0.99 for s in scores) >= 3  # the low-score band is compared too


def test_a_crowd_of_400_faces(lfw_dev, detector):
    """20 x 20 lfw faces of 64 px in one 1280 px photo: thousands of PNet proposals per pyramid level,
    which the package's all-pairs NMS holds as N x N float64 matrices (about 5 GB at 1,024 faces); facetag
    compares them a block at a time."""
    from PIL import Image

    paths = sorted(glob.glob(os.path.join(lfw_dev, "images", "*", "*.jpg")))[:400]
    tiles = [np.asarray(Image.fromarray(facetag.load_image(p)[60:190, 60:190]).resize((64, 64))) for p in paths]
    crowd = np.concatenate([np.concatenate(tiles[row * 20:(row + 1) * 20], axis=1) for row in range(20)], axis=0)
    found = detector.detect(crowd)
    tiles_with_a_face = {((d.box[0] + d.box[2]) // 128, (d.box[1] + d.box[3]) // 128) for d in found}
    assert len(tiles_with_a_face) >= 395 and len(found) <= 410


@pytest.mark.parametrize("method", ["union", "min"])
def test_nms_keeps_what_the_package_keeps(method):
    from mtcnn.utils.bboxes import smart_nms_from_bboxes

    from facetag.vision.cascade import NMS_BLOCK, suppress

    rng = np.random.default_rng(1)
    count = 2 * NMS_BLOCK + 77  # three blocks, the last one partial
    corners = rng.uniform(0, 400, (count, 2))
    sizes = rng.uniform(10, 60, (count, 1))
    scores = np.sort(rng.uniform(0.6, 1.0, count))[::-1]
    boxes = np.concatenate([corners, corners + sizes, scores[:, None]], axis=1)
    theirs = smart_nms_from_bboxes(np.concatenate([np.zeros((count, 1)), boxes], axis=1), threshold=0.5,
                                   method=method, initial_sort=False)[:, 1:]
    ours = suppress(boxes, 0.5, method)
    assert 0 < len(ours) < count
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("shape", [(5, 5, 3), (12, 12, 3), (13, 40, 3), (3000, 20, 3), (1, 20000, 3), (20000, 1, 3),
                                   (1, 1, 3)])
def test_photos_too_small_or_thin_for_a_face(detector, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "divide by zero encountered in log" from the pyramid
        assert detector.detect(np.zeros(shape, np.uint8)) == []


def test_a_textured_photo_without_faces(detector):
    """Not one face at the detector's min score (measured: none at 0.5 either, nor from the mtcnn package)."""
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []
