"""Decoding: every format and mode to RGB uint8, EXIF orientation, and one clear error for bad files."""

import io

import numpy as np
import pytest
from PIL import Image

from facetag import ImageError, load_image


def _encode(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_formats_decode_to_rgb_uint8(rgb, fmt):
    out = load_image(_encode(rgb, fmt))
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1", "I", "F"])
def test_modes_convert_to_rgb(rgb, mode):
    image = rgb.convert("L").convert(mode) if mode in ("I;16", "I", "F") else rgb.convert(mode)
    fmt = {"CMYK": "JPEG", "F": "TIFF", "I": "TIFF"}.get(mode, "PNG")
    out = load_image(_encode(image, fmt))
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)


def test_sixteen_bit_grey_keeps_its_range():
    grey = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    out = load_image(_encode(Image.fromarray(grey), "PNG"))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and (out[..., 0] == out[..., 2]).all()


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert (load_image(_encode(image, "PNG")) == 255).all()


def test_cmyk_jpeg_colours_survive():
    red = Image.new("RGB", (16, 16), (200, 30, 30)).convert("CMYK")
    out = load_image(_encode(red, "JPEG", quality=95)).astype(int)
    assert abs(out[8, 8, 0] - 200) < 12 and out[8, 8, 1] < 50


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (60, 40), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 10))  # white square top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = load_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (60, 40, 3)
    assert out[:10, -10:].mean() > 200  # the square is now top-right


def test_grayscale_file_from_disk(tmp_path):
    path = tmp_path / "grey.jpg"
    Image.new("L", (20, 30), 128).save(path)
    out = load_image(str(path))
    assert out.shape == (30, 20, 3) and abs(int(out[5, 5, 1]) - 128) <= 1


def _bad_inputs(tmp_path, rgb):
    full = _encode(rgb, "JPEG")
    png = bytearray(_encode(rgb, "PNG"))
    idat = png.index(b"IDAT")
    png[idat + 20 : idat + 40] = bytes(20)  # damaged pixel data: the chunk's CRC no longer matches
    bomb = _encode(Image.new("L", (12000, 9000)), "PNG")  # 108 MP, a few hundred KB
    cases = {
        "empty": b"",
        "not an image": b"this is a text file, not a photo\n" * 10,
        "truncated": full[: len(full) // 2],
        "corrupt": bytes(png),
        "bomb": bomb,
    }
    paths = {}
    for name, data in cases.items():
        paths[name] = tmp_path / f"{name.replace(' ', '_')}.jpg"
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("kind, reason", [
    ("empty", "empty"),
    ("not an image", "not an image"),
    ("truncated", "truncated"),
    ("corrupt", "corrupt"),
    ("bomb", "over the 100-megapixel limit"),
])
def test_bad_files_raise_one_error_naming_file_and_reason(tmp_path, rgb, kind, reason):
    path = _bad_inputs(tmp_path, rgb)[kind]
    with pytest.raises(ImageError) as info:
        load_image(str(path))
    assert info.value.source == str(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ImageError, match="nothere.jpg"):
        load_image(str(tmp_path / "nothere.jpg"))


def test_bytes_are_labelled_by_name():
    with pytest.raises(ImageError, match="gs://bucket/x.jpg"):
        load_image(b"nope", name="gs://bucket/x.jpg")


def test_raw_files_use_a_large_embedded_preview_else_demosaic_at_half_size():
    from tests.corpus import dng, with_preview

    rng = np.random.default_rng(0)
    sensor = rng.integers(0, 255, (100, 60, 3), dtype=np.uint8)
    assert load_image(dng(sensor), name="IMG_1.DNG").shape == (50, 30, 3)
    large, small = Image.new("RGB", (1300, 2000), (200, 0, 0)), Image.new("RGB", (160, 240), (200, 0, 0))
    out = load_image(with_preview(dng(sensor), large), name="IMG_2.dng")
    assert out.shape == (2000, 1300, 3) and out[1000, 650, 0] > 180
    assert load_image(with_preview(dng(sensor), small), name="IMG_3.dng").shape == (50, 30, 3)


def test_wrong_endings_both_ways(rgb):
    from tests.corpus import dng

    assert load_image(_encode(rgb, "JPEG"), name="x.nef").shape == (40, 60, 3)
    assert load_image(dng(np.zeros((40, 60, 3), np.uint8)), name="x.jpg").shape[2] == 3
    with pytest.raises(ImageError, match="RAW data is corrupt"):
        load_image(b"\xff\xd8\xff\xe0 a JPEG header and nothing else", name="x.nef")


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_formats(fmt):
    ramp = np.linspace(0, 255, 40 * 60 * 3).reshape(40, 60, 3).astype(np.uint8)
    out = load_image(_encode(Image.fromarray(ramp), fmt, quality=90))
    assert out.shape == (40, 60, 3) and abs(out.astype(int) - ramp).mean() < 10


def test_limits_are_enforced_before_decoding(tmp_path):
    from facetag.io.limits import Limits

    with pytest.raises(ImageError, match="20000×1 pixels: too narrow to hold a face"):
        load_image(_encode(Image.new("L", (20000, 1)), "PNG"))
    with pytest.raises(ImageError, match="3000×2000 pixels .6 megapixels., over the 5-megapixel limit"):
        load_image(_encode(Image.new("L", (3000, 2000)), "PNG"), limits=Limits(max_pixels=5_000_000))
    big = tmp_path / "big.jpg"
    big.write_bytes(bytes(1_000_001))
    with pytest.raises(ImageError, match="over the 1 MB limit"):
        load_image(str(big), limits=Limits(max_file_bytes=1_000_000))
