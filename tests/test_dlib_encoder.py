"""dlib's ResNet read from its weight file without dlib: parsed, converted to LiteRT, equal to dlib's own encoder;
the aligned chips it encodes; facetag-256, which joins its encodings to facetag-128's."""

import glob
import os

import numpy as np
import pytest
from PIL import Image

from facetag.vision.alignment import CHIP_SIZE, align_face, chip_scale, similarity_transform
from facetag.vision.calibration import calibration_key
from facetag.vision.dlib_encoder import load_dlib_encoder
from facetag.vision.dlib_weights import read_network
from facetag.vision.models import DLIB_WEIGHT, apply_head, describe_model, load_model, uses_chips
from facetag.vision.weight_files import dlib_resnet_path


@pytest.fixture(scope="module")
def sample_chips(sample_detections):
    """The sample photos' faces as facetag aligns them."""
    return np.stack([photo.chip(face.landmarks) for photo, faces in sample_detections for face in faces])


def test_the_weight_file_parses_into_dlibs_resnet():
    network = read_network(dlib_resnet_path())
    assert network.chip_size == CHIP_SIZE
    np.testing.assert_allclose(network.mean_rgb, [122.782, 117.001, 104.298], atol=1e-4)
    assert network.stem.kernel.shape == (7, 7, 3, 32) and network.pool == (3, 2)
    assert len(network.blocks) == 14
    assert [first.stride for first, _ in network.blocks] == [1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 2, 1, 1, 2]
    assert network.blocks[-1][1].kernel.shape == (3, 3, 256, 256) and network.projection.shape == (256, 128)


def test_a_file_that_is_not_the_network_is_refused(tmp_path):
    other = tmp_path / "model.dat"
    other.write_bytes(b"\x01\x05con_4" + bytes(64))
    with pytest.raises(ValueError, match="model.dat is not dlib"):
        read_network(str(other))


def test_the_litert_network_encodes_as_dlib_does(sample_chips):
    """dlib's own encoder (dlib-bin, the test extra) on the same chips: the same 128 numbers, made unit length."""
    dlib = pytest.importorskip("dlib", reason="dlib's own encoder is the reference: pip install dlib-bin")
    reference = dlib.face_recognition_model_v1(dlib_resnet_path())
    expected = np.array([reference.compute_face_descriptor(np.ascontiguousarray(chip)) for chip in sample_chips])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(load_dlib_encoder("fp32").encode(sample_chips), expected, atol=1e-4)


def test_the_int8_network_encodes_close_to_float32(sample_chips):
    """Full-integer int8, calibrated on other faces' chips (facetag.vision.calibration): over the 6,922 lfw_dev faces
    0.03 from float32 at the median (weights/README.md); each sample face far nearer itself than the others."""
    int8, fp32 = load_dlib_encoder("int8").encode(sample_chips), load_dlib_encoder("fp32").encode(sample_chips)
    assert load_dlib_encoder("int8").encoder_id == f"{load_dlib_encoder('fp32').encoder_id}-int8-{calibration_key()[:6]}"
    distances = np.linalg.norm(int8[:, None] - fp32[None], axis=2)
    assert np.diagonal(distances).max() < 0.12
    assert (np.diagonal(distances)[:, None] < distances + np.eye(len(distances))).all()


def test_encodings_do_not_depend_on_the_batch(sample_chips):
    encoder = load_dlib_encoder()
    together = encoder.encode(sample_chips)
    one_by_one = np.concatenate([encoder.encode(sample_chips[i : i + 1]) for i in range(len(sample_chips))])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="150x150"):
        encoder.encode(np.zeros((1, 160, 160, 3), np.uint8))


def test_the_similarity_transform_is_exact_on_points_it_maps():
    rng = np.random.default_rng(3)
    source = rng.uniform(0, 100, (5, 2))
    angle, scale = 0.4, 1.7
    matrix = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    found, offset = similarity_transform(source, source @ matrix.T + (10, -4))
    np.testing.assert_allclose(found, matrix, atol=1e-12)
    np.testing.assert_allclose(offset, (10, -4), atol=1e-10)


def test_a_turned_and_enlarged_face_gives_the_same_chip(samples):
    """The chip is the face upright at one size: the same photo turned by 25 degrees and twice as large (with its
    landmarks moved alike) gives nearly the same chip, and a photo far larger than the chip is shrunk first."""
    from facetag.io.images import load_image
    from facetag.vision.detection import shared_detector

    path = min(glob.glob(os.path.join(samples, "**", "*.jp*g"), recursive=True))
    image = load_image(path)
    face = shared_detector().detect(image)[0]
    upright = align_face(image, face.landmarks)
    height, width = image.shape[:2]
    turned = Image.fromarray(image).resize((2 * width, 2 * height), Image.BICUBIC).rotate(25, expand=False)
    angle = np.radians(25)  # PIL turns anticlockwise about the centre
    centre = np.array([width, height], np.float64)
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    moved = (2 * np.asarray(face.landmarks) - centre) @ rotation.T + centre
    again = align_face(np.asarray(turned), moved)
    assert chip_scale(moved) < chip_scale(face.landmarks)
    centre_part = (slice(40, 110), slice(40, 110))
    difference = np.abs(upright[centre_part].astype(int) - again[centre_part].astype(int)).mean()
    assert difference < 12, f"mean difference {difference:.1f} of 255 between the two chips' centres"


def test_facetag_256_joins_both_encoders(sample_detections):
    photo, faces = next((photo, faces) for photo, faces in sample_detections if faces)
    crops = np.stack([photo.crop(f.box) for f in faces])
    chips = np.stack([photo.chip(f.landmarks) for f in faces])
    joined, model = load_model("facetag-256"), load_model("facetag-128")
    assert uses_chips("facetag-256") and not uses_chips("facetag-128")
    assert describe_model("facetag-256") == (joined.model_id, 256)
    encodings = joined.encode(crops, chips)
    ours, theirs = model.encode(crops), joined.dlib.encode(chips)
    expected = np.concatenate([ours, DLIB_WEIGHT * theirs], axis=1) / np.sqrt(1 + DLIB_WEIGHT ** 2)
    np.testing.assert_allclose(encodings, expected, atol=1e-5)
    with pytest.raises(ValueError, match="its aligned chip"):
        joined.encode(crops)


def test_facetag_duo_maps_facetag_256s_encoding_to_128_numbers(sample_detections):
    photo, faces = next((photo, faces) for photo, faces in sample_detections if faces)
    crops = np.stack([photo.crop(f.box) for f in faces])
    chips = np.stack([photo.chip(f.landmarks) for f in faces])
    duo, joined = load_model("facetag-duo"), load_model("facetag-256")
    encodings = duo.encode(crops, chips)
    assert encodings.shape == (len(faces), 128) and describe_model("facetag-duo") == (duo.model_id, 128)
    np.testing.assert_allclose(encodings, apply_head(duo.joined_head, joined.encode(crops, chips)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(encodings, axis=1), 1.0, atol=1e-5)
    assert duo.model_id.split(":")[2] == f"{joined.head_sha256[:12]}+{duo.joined_head_sha256[:12]}"


def test_every_model_has_its_own_thresholds():
    """facetag-256's distances are about half facetag-128's: verification, 1:K and clustering each take the
    thresholds of the model whose encodings they compare (an archive store's cluster job: its model id's)."""
    from facetag.errors import FaceTagError
    from facetag.vision.models import (
        CLUSTER_THRESHOLDS,
        IDENTIFY_THRESHOLDS,
        THRESHOLDS,
        available_models,
        cluster_threshold_of,
    )

    for name in available_models():
        assert CLUSTER_THRESHOLDS[name] <= THRESHOLDS[name] and IDENTIFY_THRESHOLDS[name] <= THRESHOLDS[name]
        assert cluster_threshold_of(describe_model(name)[0]) == CLUSTER_THRESHOLDS[name]
    assert THRESHOLDS["facetag-256"] < THRESHOLDS["facetag-128"] / 1.5
    with pytest.raises(FaceTagError, match="pass --threshold"):
        cluster_threshold_of("someone-elses-model:x:y:z")
