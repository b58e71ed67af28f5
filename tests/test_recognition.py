"""Verification and identification on real photos (sample photos fetched by make setup)."""

import os

import numpy as np
import pytest

import facetag
from facetag.vision.detection import LANDMARK_NAMES


@pytest.fixture(scope="module")
def gallery(samples):
    return facetag.Gallery.from_folder(os.path.join(samples, "gallery"))


def test_find_faces_on_a_portrait(samples):
    faces = facetag.find_faces(os.path.join(samples, "photos", "obama2.jpg"))
    assert len(faces) == 1
    face = faces[0]
    left, top, right, bottom = face.box
    assert right - left > 50 and bottom - top > 50 and face.score > 0.95
    assert len(face.landmarks) == len(LANDMARK_NAMES)
    assert face.encoding.shape == (facetag.load_model().dim,)


def test_obama2_verifies_as_obama_and_biden_does_not(samples):
    obama = os.path.join(samples, "gallery", "obama", "obama.jpg")
    assert facetag.verify(os.path.join(samples, "photos", "obama2.jpg"), obama).same
    assert not facetag.verify(os.path.join(samples, "gallery", "biden", "biden.jpg"), obama).same


def test_claim_against_the_gallery(samples, gallery):
    photo = os.path.join(samples, "photos", "obama2.jpg")
    assert facetag.verify_claim(photo, "obama", gallery).same
    assert not facetag.verify_claim(photo, "biden", gallery).same
    with pytest.raises(facetag.FaceTagError, match="not enrolled"):
        facetag.verify_claim(photo, "lincoln", gallery)


def test_identify_names_obama_and_calls_the_astronaut_unknown(samples, gallery):
    assert gallery.identities == ["biden", "obama"]
    [(_, match)] = facetag.identify(os.path.join(samples, "photos", "obama2.jpg"), gallery)
    assert match.identity == "obama" and match.candidates[0][0] == "obama"
    [(_, match)] = facetag.identify(os.path.join(samples, "photos", "astronaut.png"), gallery)
    assert match.identity == facetag.UNKNOWN


def test_a_photo_without_a_face(tmp_path):
    from PIL import Image

    path = tmp_path / "sky.png"
    Image.new("RGB", (200, 200), (90, 140, 220)).save(path)
    assert facetag.find_faces(str(path)) == []
    with pytest.raises(facetag.FaceTagError, match="no face found in .*sky.png"):
        facetag.verify(str(path), str(path))


def test_gallery_refuses_encodings_of_another_model(gallery):
    with pytest.raises(facetag.ModelMismatchError, match="re-enrol"):
        gallery.identify_encodings(gallery.encodings_[:1], "facenet-512:000000000000:none:crop-v0")


def test_a_large_photo_gives_boxes_in_its_own_pixels(samples):
    from PIL import Image

    from facetag.vision.detection import DETECTION_MAX_SIDE

    image = facetag.load_image(os.path.join(samples, "photos", "obama2.jpg"))
    big = np.asarray(Image.fromarray(image).resize((image.shape[1] * 4, image.shape[0] * 4)))
    assert max(big.shape[:2]) > DETECTION_MAX_SIDE
    [small_face] = facetag.find_faces(image)
    [big_face] = facetag.find_faces(big)
    np.testing.assert_allclose(big_face.box, np.array(small_face.box) * 4, atol=0.04 * big.shape[1])
    assert np.linalg.norm(big_face.encoding - small_face.encoding) < 0.3
