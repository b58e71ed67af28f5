"""Big JPEGs decoded small (facetag.vision.photo): the same faces, in full-size pixels, cropped sharp enough."""

import glob
import io
import os

import numpy as np
import pytest
from PIL import Image

from facetag.io.images import decode_image, decode_reduced
from facetag.vision.alignment import crop_face
from facetag.vision.detection import DETECTION_MAX_SIDE, shared_detector
from facetag.vision.framing import detect_framed
from facetag.vision.models import load_model
from facetag.vision.photo import Photo
from tests.conftest import shared
from tests.test_detection import iou

#: Largest encoding distance between a face cropped from the 1/2-size decode and the same box cropped from the
#: full decode, on the colour test photo below: measured 0.043 (median 0.017) on 2026-11-29. Two photos of one
#: person are typically 0.6-0.9 apart, the same-person threshold is 1.15.
DRAFT_CROP_BOUND = 0.08
#: The same for dlib's unit encodings of chips (facetag-256): measured 0.023 (median 0.005) on 2026-12-04; the
#: same person is within 0.44 on that scale.
DRAFT_CHIP_BOUND = 0.05


def jpeg(image, quality=92):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_a_big_jpeg_is_decoded_at_half_size_and_answers_in_full_size_pixels(samples):
    photo_path = os.path.join(samples, "gallery", "obama", "obama.jpg")
    big = Image.open(photo_path).convert("RGB")
    big = big.resize((big.width * 4, big.height * 4), Image.BILINEAR)  # 4548 x 3640
    data = jpeg(big)
    photo = Photo(data, "big.jpg")
    assert photo.scale == 2 and (photo.width, photo.height) == big.size
    assert max(photo.image.shape[:2]) >= DETECTION_MAX_SIDE
    full = decode_image(data, "big.jpg")
    [face] = photo.detect(shared_detector())
    [reference] = detect_framed(shared_detector(), full)
    assert iou(face.box, reference.box) > 0.9
    assert np.allclose(face.landmarks, reference.landmarks, atol=12)


def test_small_jpegs_and_other_formats_are_decoded_whole(samples):
    path = os.path.join(samples, "photos", "astronaut.png")  # 512 x 512 PNG
    with open(path, "rb") as f:
        decoded = decode_reduced(f.read(), path, min_side=100)
    assert decoded.scale == 1 and decoded.image.shape == (512, 512, 3)
    small = jpeg(Image.new("RGB", (1000, 800), (90, 120, 150)))
    assert decode_reduced(small, "small.jpg", min_side=DETECTION_MAX_SIDE).scale == 1


def test_an_exif_rotated_big_jpeg_reports_its_upright_size():
    image = Image.new("RGB", (4000, 3000), (120, 100, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to show upright
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    decoded = decode_reduced(buffer.getvalue(), "turned.jpg", min_side=DETECTION_MAX_SIDE)
    assert decoded.size == (3000, 4000) and decoded.scale == 2 and decoded.image.shape == (2000, 1500, 3)


@pytest.fixture(scope="module")
def colour_scene():
    """A 12-megapixel camera-like JPEG: the first photos of 12 colour_faces people, 1000 px tiles in a 4x3 grid."""
    people = sorted(glob.glob(os.path.join(shared("colour_faces"), "images", "*")))[:12]
    scene = Image.new("RGB", (4000, 3000))
    for i, person in enumerate(people):
        tile = Image.open(sorted(glob.glob(os.path.join(person, "*")))[0]).convert("RGB").resize((1000, 1000))
        scene.paste(tile, ((i % 4) * 1000, (i // 4) * 1000))
    return jpeg(scene)


def _crops(photo_or_image, face):
    return photo_or_image.crop(face.box) if isinstance(photo_or_image, Photo) else crop_face(photo_or_image, face.box)


def _chips(photo_or_image, face):
    from facetag.vision.alignment import align_face

    if isinstance(photo_or_image, Photo):
        return photo_or_image.chip(face.landmarks)
    return align_face(photo_or_image, face.landmarks)


def _dlib_encode(chips):
    from facetag.vision.dlib_encoder import load_dlib_encoder

    return load_dlib_encoder().encode(chips)


def _facenet_encode(crops):
    return load_model("facetag-128").encode(crops)


@pytest.mark.parametrize(("cut", "encode", "bound"), [(_crops, _facenet_encode, DRAFT_CROP_BOUND),
                                                      (_chips, _dlib_encode, DRAFT_CHIP_BOUND)], ids=["crops", "chips"])
def test_faces_from_the_half_size_decode_encode_as_full_size_ones_do(colour_scene, cut, encode, bound):
    """Crops (FaceNet) and facetag-256's aligned chips (dlib) come from the smallest decode in which the face is
    at least their size, and encode as the same faces cut from the full decode."""
    photo = Photo(colour_scene, "scene.jpg")
    faces = photo.detect(shared_detector())
    assert photo.scale == 2 and len(faces) >= 10
    full = decode_image(colour_scene, "scene.jpg")
    from_draft = encode(np.stack([cut(photo, face) for face in faces]))
    from_full = encode(np.stack([cut(full, face) for face in faces]))
    assert sorted(photo._decodes) == [2], "these faces are large enough to cut from the half-size decode"
    assert np.linalg.norm(from_draft - from_full, axis=1).max() < bound


def test_a_small_face_is_cropped_from_a_larger_decode(colour_scene):
    photo = Photo(colour_scene, "scene.jpg")
    face = photo.detect(shared_detector())[0]
    left, top = face.box[:2]
    small_box = (left, top, left + 100, top + 100)  # 125 px with the margin: under CROP_SIZE at half size
    full = decode_image(colour_scene, "scene.jpg")
    np.testing.assert_array_equal(photo.crop(small_box), crop_face(full, small_box))
    assert sorted(photo._decodes) == [1, 2]
