"""The FaceNet backbone: any batch size, both tensor layouts, the same encodings as the TensorFlow graph in
float32 and close to them in int8."""

import numpy as np
import pytest

from facetag.vision.alignment import standardize, to_channels_last
from facetag.vision.backbone import DEFAULT_PRECISION, EMBEDDING_SIZE, PRECISIONS, load_backbone
from facetag.vision.models import available_models, load_model


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (5, 160, 160, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sample_faces(sample_detections):
    """The faces of the sample photos, cropped as facetag crops them."""
    return np.stack([photo.crop(face.box) for photo, faces in sample_detections for face in faces])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_batch_n_equals_batch_one(crops, precision):
    """int8 quantises each face's layer inputs on their own, so a face's encoding does not depend on its batch."""
    backbone = load_backbone(precision)
    together = backbone.encode(crops)
    one_by_one = np.concatenate([backbone.encode(crops[i : i + 1]) for i in range(len(crops))])
    assert together.shape == (5, EMBEDDING_SIZE)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_output_is_l2_normalised(crops):
    norms = np.linalg.norm(load_backbone().encode(crops), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_batches_larger_than_the_internal_batch_size():
    backbone = load_backbone()
    rng = np.random.default_rng(2)
    many = rng.integers(0, 256, (backbone.batch_size + 3, 160, 160, 3), dtype=np.uint8)
    np.testing.assert_allclose(backbone.encode(many)[-3:], backbone.encode(many[-3:]), atol=1e-5)


@pytest.mark.parametrize("name", available_models())
def test_channels_first_equals_channels_last(crops, name):
    model = load_model(name)
    chips = crops[:, 5:155, 5:155] if model.uses_chips else None
    np.testing.assert_allclose(model.encode(crops.transpose(0, 3, 1, 2), chips), model.encode(crops, chips), atol=1e-6)
    if model.uses_chips:
        np.testing.assert_allclose(model.encode(crops, chips.transpose(0, 3, 1, 2)), model.encode(crops, chips),
                                   atol=1e-6)
    assert model.encode(crops, chips).shape == (5, model.dim)


def test_layout_conversion_and_errors(crops):
    assert to_channels_last(crops[0]).shape == (1, 160, 160, 3)
    with pytest.raises(ValueError, match="channel axis"):
        to_channels_last(np.zeros((2, 160, 160, 4)))
    with pytest.raises(ValueError, match="160x160"):
        load_backbone().encode(np.zeros((1, 96, 96, 3), np.uint8))


def test_fixed_standardization():
    np.testing.assert_allclose(standardize(np.array([0, 127.5, 255])), [-127.5 / 128, 0, 127.5 / 128])


def test_model_ids_differ_between_models():
    ids = {load_model(name).model_id for name in available_models()}
    assert len(ids) == len(available_models())
    for model_id in ids:
        name, backbone, head_sha, preprocessing = model_id.split(":")
        assert len(backbone.split("-")[0]) == 12 and preprocessing
    # facetag-256's id names both encoders' weights and both preprocessings
    assert load_model("facetag-256").model_id.split(":")[1:] == [
        load_model("facetag-128").backbone.backbone_id + "+" + load_model("facetag-256").dlib.encoder_id,
        load_model("facetag-128").head_sha256[:12], "crop-v2+chip-v1"]
    # The float32 models keep the ids stores and galleries were encoded with before int8.
    assert load_model("facetag-128-fp32").model_id == load_model("facetag-128").model_id.replace("-int8:", ":")


def test_int8_encodes_close_to_float32(sample_faces):
    """The default int8 backbone against float32 on real faces: over the 4,856 faces of the lfw_dev and colour
    validation pairs the distance was 0.0115 at the median and 0.023 at most (weights/README.md)."""
    assert DEFAULT_PRECISION == "int8"
    distances = np.linalg.norm(load_backbone("int8").encode(sample_faces) - load_backbone("fp32").encode(sample_faces),
                               axis=1)
    assert 0 < distances.max() < 0.04


def test_the_litert_network_encodes_as_facenets_tensorflow_graph(crops):
    """The flatbuffer facetag runs (facetag.vision.runtime) against the frozen graph it was converted from."""
    import tensorflow as tf

    from facetag.vision.conversion import graph_function

    _, encode = graph_function()
    reference = encode(tf.constant(standardize(crops))).numpy()
    np.testing.assert_allclose(load_backbone("fp32").encode(crops), reference, atol=1e-5)
