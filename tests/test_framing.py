"""Faces that fill the frame: crops at the photo's border, the second search, and colour/grey scoring."""

import os

import numpy as np
import pytest
from PIL import Image

from facetag.io.images import load_image
from facetag.vision.alignment import crop_face
from facetag.vision.detection import shared_detector
from facetag.vision.framing import detect_framed, with_border


@pytest.fixture(scope="module")
def biden(samples):
    image = load_image(os.path.join(samples, "gallery", "biden", "biden.jpg"))
    return image, shared_detector().detect(image)[0].box


def tight(image, box, size=112):
    """The face as a tool that exports tight crops leaves it: the box shrunk a little, resized."""
    return crop_face(image, box, margin=-0.25, size=size)


def test_crops_inside_the_photo_do_not_depend_on_the_border_fill(biden):
    image, box = biden
    crops = [crop_face(image, box, border=b) for b in ("mean", "reflect", "clip")]
    assert all(np.array_equal(crops[0], c) for c in crops[1:])


def test_a_face_filling_the_frame_keeps_its_scale_with_the_mean_border(biden):
    face = tight(*biden)
    whole = (0, 0, face.shape[1] - 1, face.shape[0] - 1)
    mean = np.round(face.reshape(-1, 3).mean(axis=0))
    crop = crop_face(face, whole, margin=0.25, border="mean")
    # the margin is a border of the photo's mean colour; the face keeps the middle 1/1.25 of the crop
    assert np.abs(crop[:8].reshape(-1, 3) - mean).max() <= 1 and np.abs(crop[:, -8:].reshape(-1, 3) - mean).max() <= 1
    assert not np.allclose(crop[60:100, 60:100], mean, atol=10)
    clipped = crop_face(face, whole, margin=0.25, border="clip")  # crop-v1: the bare photo stretched to the crop
    assert np.array_equal(clipped, np.asarray(Image.fromarray(face).resize((160, 160), Image.BILINEAR)))
    reflected = crop_face(face, whole, margin=3.0, border="reflect")  # wider than the photo: reflected repeatedly
    assert reflected.shape == (160, 160, 3)


def test_the_second_search_finds_a_face_that_fills_the_frame(biden):
    face = tight(*biden)
    detector = shared_detector()
    assert detector.detect(face) == []  # MTCNN alone misses it
    found = detect_framed(detector, face)
    assert len(found) == 1
    left, top, right, bottom = found[0].box
    assert left >= 0 and top >= 0 and right <= 111 and bottom <= 111 and (right - left) * (bottom - top) > 0.6 * 112 * 112


def test_the_border_is_the_mean_colour_and_the_offset_maps_back(biden):
    image = biden[0]
    bordered, (dx, dy) = with_border(image, 0.25)
    h, w = image.shape[:2]
    assert bordered.shape[:2] == (h + 2 * dy, w + 2 * dx)
    assert np.array_equal(bordered[dy : dy + h, dx : dx + w], image)
    assert np.abs(bordered[0, 0].astype(int) - image.reshape(-1, 3).mean(axis=0)).max() <= 0.5



def test_evaluate_reports_colour_and_grey_pairs_apart(tmp_path):
    """A pairs file mixing lfw_dev's grey photos and lfw_dev_colour's colour ones: one line per kind."""
    import subprocess
    import sys

    from tests.conftest import shared

    grey, colour = shared("lfw_dev"), shared("lfw_dev_colour")
    images = tmp_path / "images"
    for name, source, person in (("Grey", grey, "Tony_Blair"), ("Colour", colour, "Colin_Powell")):
        (images / name).mkdir(parents=True)
        for i in (1, 2, 3):
            os.symlink(os.path.join(source, "images", person, f"{person}_{i:04d}.jpg"), images / name / f"{name}_{i:04d}.jpg")
    folds = [["Grey 1 2", "Colour 1 2", "Grey 1 Colour 1", "Grey 3 Colour 3"],
             ["Grey 2 3", "Colour 2 3", "Grey 2 Colour 2", "Grey 1 Colour 3"]]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\t2\n" + "".join(line.replace(" ", "\t") + "\n" for fold in folds for line in fold))
    # A cache of its own for the encodings, sharing the converted networks (converting them again costs 30 s).
    from facetag.vision.runtime import prepare_all

    cache = tmp_path / "cache"
    cache.mkdir()
    os.symlink(os.path.dirname(prepare_all()[0]), cache / "models")
    out = subprocess.run([sys.executable, "-m", "facetag.cli", "evaluate", "--pairs", str(pairs), "--images", str(images)],
                         capture_output=True, text=True, check=False, env={**os.environ, "FACETAG_CACHE": str(cache)})
    assert out.returncode == 0, out.stderr
    lines = {line.split(" (")[0]: line for line in out.stdout.splitlines() if " pairs (" in line}
    assert set(lines) == {"colour pairs", "grey pairs", "mixed pairs"}, out.stdout
    assert lines["colour pairs"].startswith("colour pairs (2, 2 same): accuracy ")
    assert lines["mixed pairs"].startswith("mixed pairs (4, 0 same): accuracy ")
