"""Decoding: every format and mode to RGB uint8, EXIF orientation, and one clear error for bad files."""

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from facetag import ImageError, load_image


def _encode(image, fmt, **kw):
    buf = io.BytesIO()
    if fmt == "HEIF":  # written by pillow-heif itself: registering its Pillow plugin here would hide a decoder
        pillow_heif.from_pillow(image).save(buf, format="HEIF", **kw)  # that forgot to register it
    else:
        image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))


#: Six flat colour patches of 32 x 32 pixels, two rows of three: a 96 x 64 test card. Patches aligned to
#: JPEG's 16-pixel blocks keep lossy codecs' errors at the patch edges, so each patch's inside is checked.
CARD_COLOURS = np.array([[220, 30, 30], [30, 200, 40], [40, 60, 210], [240, 240, 240], [15, 15, 15], [230, 200, 40]],
                        np.uint8)
PATCH = 32


def _card():
    card = np.zeros((2 * PATCH, 3 * PATCH, 3), np.uint8)
    for i, colour in enumerate(CARD_COLOURS):
        row, col = divmod(i, 3)
        card[row * PATCH:(row + 1) * PATCH, col * PATCH:(col + 1) * PATCH] = colour
    return card


def assert_card(out, card, inside_tolerance, mean_tolerance):
    """``out`` is ``card`` decoded by a lossy codec: every patch's inside (4 pixels in from its edges) within
    ``inside_tolerance`` of its colour, and the whole image within ``mean_tolerance`` on average."""
    assert out.dtype == np.uint8 and out.shape == card.shape
    error = np.abs(out.astype(int) - card.astype(int))
    for i in range(len(CARD_COLOURS)):
        row, col = divmod(i, 3)
        inside = error[row * PATCH + 4:(row + 1) * PATCH - 4, col * PATCH + 4:(col + 1) * PATCH - 4]
        assert inside.max() <= inside_tolerance, f"patch {i} ({CARD_COLOURS[i]}) off by {inside.max()}"
    assert error.mean() <= mean_tolerance


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})])
def test_lossless_formats_decode_every_pixel_exactly(rgb, fmt, options):
    """Random pixels come back exactly: a shift, flip, channel swap or blank image fails."""
    np.testing.assert_array_equal(load_image(_encode(rgb, fmt, **options)), np.asarray(rgb))


def test_gif_decodes_its_palette_colours_exactly():
    """GIF holds at most 256 colours: random pixels of 64 colours survive it unchanged."""
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (64, 3), dtype=np.uint8)
    pixels = palette[rng.integers(0, 64, (40, 60))]
    np.testing.assert_array_equal(load_image(_encode(Image.fromarray(pixels), "GIF")), pixels)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "HEIF", "AVIF"])
def test_lossy_formats_decode_close_to_the_original(fmt):
    """Lossy codecs (default quality) keep flat colours: measured (Pillow 12.3), the error inside the patches is
    at most 5 (WebP) and over the whole card 2.2 on average (WebP; the edges between patches bleed)."""
    card = _card()
    assert_card(load_image(_encode(Image.fromarray(card), fmt)), card, inside_tolerance=8, mean_tolerance=4)


def _modes(rgb):
    """{mode: (image in that mode, format it is saved in, the RGB pixels it must decode to)}."""
    grey = np.asarray(rgb.convert("L"))
    grey_rgb = np.stack([grey] * 3, axis=-1)
    sixteen = grey.astype(np.uint16) * 257  # 16-bit values spanning the range: 257 x v decodes to v
    palette, bilevel = rgb.convert("P"), rgb.convert("1")
    return {
        "L": (rgb.convert("L"), "PNG", grey_rgb),
        "LA": (rgb.convert("LA"), "PNG", grey_rgb),  # opaque: the alpha changes nothing
        "RGBA": (rgb.convert("RGBA"), "PNG", np.asarray(rgb)),
        "P": (palette, "PNG", np.asarray(palette.convert("RGB"))),  # the palette's colours, not the original's
        "1": (bilevel, "PNG", np.asarray(bilevel.convert("RGB"))),  # black and white
        "I;16": (Image.fromarray(sixteen), "PNG", grey_rgb),
        "I": (Image.fromarray(sixteen.astype(np.int32)), "TIFF", grey_rgb),  # read as 16-bit values too
        "F": (rgb.convert("L").convert("F"), "TIFF", grey_rgb),  # floats in 0..255
    }


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "1", "I;16", "I", "F"])
def test_modes_convert_to_the_right_rgb_pixels(rgb, mode):
    image, fmt, expected = _modes(rgb)[mode]
    assert image.mode == mode
    np.testing.assert_array_equal(load_image(_encode(image, fmt)), expected)


def test_sixteen_bit_grey_keeps_its_range():
    grey = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    out = load_image(_encode(Image.fromarray(grey), "PNG"))
    expected = np.rint(grey / 257).astype(np.uint8)
    np.testing.assert_array_equal(out, np.stack([expected] * 3, axis=-1))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_transparent_pixels_become_white():
    """Transparent over white: clear -> white, opaque -> its colour, half transparent -> halfway to white."""
    image = np.zeros((8, 12, 4), np.uint8)
    image[:, :4] = (255, 0, 0, 0)
    image[:, 4:8] = (0, 0, 255, 255)
    image[:, 8:] = (0, 0, 0, 128)
    out = load_image(_encode(Image.fromarray(image), "PNG")).astype(int)
    assert (out[:, :4] == 255).all()
    assert (out[:, 4:8] == (0, 0, 255)).all()
    assert (np.abs(out[:, 8:] - 127) <= 1).all()


def test_cmyk_jpeg_colours_survive():
    card = _card()
    out = load_image(_encode(Image.fromarray(card).convert("CMYK"), "JPEG", quality=95))
    assert_card(out, card, inside_tolerance=8, mean_tolerance=4)


#: EXIF orientation -> how a camera stores an upright picture (the inverse of the turn that shows it upright;
#: Pillow's ROTATE_90 turns counter-clockwise). 6: the camera was turned clockwise, the stored picture
#: lies on its left side and is shown turned 90 degrees clockwise.
STORED_AS = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


#: An upright 96 x 64 picture's quarters, each its own colour: (rows, columns, colour).
QUARTERS = {"top left": (slice(0, 32), slice(0, 48), (220, 30, 30)),
            "top right": (slice(0, 32), slice(48, 96), (30, 200, 40)),
            "bottom left": (slice(32, 64), slice(0, 48), (40, 60, 210)),
            "bottom right": (slice(32, 64), slice(48, 96), (240, 240, 240))}


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
def test_exif_orientation_puts_each_corner_back_in_its_place(orientation):
    """The picture stored as a camera with that orientation stores it: decoded upright, each colour is back in
    its quarter (the inside of each quarter checked: JPEG blurs the edges between them)."""
    upright = np.zeros((64, 96, 3), np.uint8)
    for rows, cols, colour in QUARTERS.values():
        upright[rows, cols] = colour
    stored = Image.fromarray(upright)
    if STORED_AS[orientation] is not None:
        stored = stored.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = load_image(_encode(stored, "JPEG", exif=exif.tobytes(), quality=95)).astype(int)
    assert out.shape == (64, 96, 3)
    for name, (rows, cols, colour) in QUARTERS.items():
        inside = out[rows.start + 4:rows.stop - 4, cols.start + 4:cols.stop - 4]
        assert np.abs(inside - colour).max() <= 8, (name, inside.mean(axis=(0, 1)))


def test_grayscale_file_from_disk(tmp_path):
    path = tmp_path / "grey.jpg"
    ramp = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (48, 1))  # a ramp across, smooth enough for JPEG
    Image.fromarray(ramp).save(path, quality=95)
    out = load_image(str(path)).astype(int)
    assert out.shape == (48, 32, 3) and (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.abs(out[..., 0] - ramp).max() <= 3


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


def _red_left_blue_right():
    """A 60 x 100 sensor image: red on the left half, blue on the right."""
    sensor = np.zeros((100, 60, 3), np.uint8)
    sensor[:, :30] = (200, 20, 20)
    sensor[:, 30:] = (20, 20, 200)
    return sensor


def assert_red_left_blue_right(out):
    """Demosaiced at half size (LibRaw's curve and brightening change the values, not which side is which):
    red over blue by far on the left, blue over red on the right, away from the border between them."""
    assert out.shape == (50, 30, 3)
    left, right = out[:, :12].astype(int).mean(axis=(0, 1)), out[:, 18:].astype(int).mean(axis=(0, 1))
    assert left[0] > left[2] + 100 and right[2] > right[0] + 100, (left, right)


def test_raw_files_use_a_large_embedded_preview_else_demosaic_at_half_size():
    from tests.corpus import dng, with_preview

    sensor = _red_left_blue_right()
    assert_red_left_blue_right(load_image(dng(sensor), name="IMG_1.DNG"))
    large, small = Image.new("RGB", (1300, 2000), (200, 0, 0)), Image.new("RGB", (160, 240), (0, 200, 0))
    out = load_image(with_preview(dng(sensor), large), name="IMG_2.dng")
    assert out.shape == (2000, 1300, 3) and np.abs(out.astype(int) - (200, 0, 0)).max() <= 8  # the preview
    assert_red_left_blue_right(load_image(with_preview(dng(sensor), small), name="IMG_3.dng"))  # not the green one


def test_wrong_endings_both_ways():
    """A JPEG named .nef and a DNG named .jpg decode to the same pixels as under their own names."""
    from tests.corpus import dng

    card = _card()
    jpeg = _encode(Image.fromarray(card), "JPEG")
    np.testing.assert_array_equal(load_image(jpeg, name="x.nef"), load_image(jpeg, name="x.jpg"))
    assert_card(load_image(jpeg, name="x.nef"), card, inside_tolerance=8, mean_tolerance=4)
    raw = dng(_red_left_blue_right())
    np.testing.assert_array_equal(load_image(raw, name="x.jpg"), load_image(raw, name="x.dng"))
    assert_red_left_blue_right(load_image(raw, name="x.jpg"))
    with pytest.raises(ImageError, match="RAW data is corrupt"):
        load_image(b"\xff\xd8\xff\xe0 a JPEG header and nothing else", name="x.nef")


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
