"""Decode any image file a user has into one RGB uint8 array.

Everything in facetag decodes through :func:`load_image`, because the face
detector's results change with the decoder: one decoder everywhere keeps the
library, the command line and the Beam jobs in agreement.
"""

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facetag.errors import ImageError

#: Larger images are refused as likely decompression bombs. 100 MP is above any
#: camera a photo archive is likely to hold (a 61 MP full-frame sensor, a 100 MP
#: medium-format back) and far below what would exhaust a worker's memory.
MAX_PIXELS = 100_000_000

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def load_image(source, *, name=None, max_pixels=MAX_PIXELS):
    """Return the image as an (H, W, 3) RGB uint8 array.

    ``source`` is a path or the file's bytes; ``name`` labels bytes in error
    messages. JPEG, PNG, GIF (first frame), BMP, TIFF, WebP and whatever else
    Pillow reads are accepted; EXIF orientation is applied; grey, palette,
    alpha, CMYK and 16-bit images are converted (transparent areas become
    white). Raises :class:`ImageError` naming the file and the reason for an
    empty, truncated, corrupt or non-image file, or one over ``max_pixels``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), name or "<bytes>"
    else:
        label = name or os.fspath(source)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ImageError(label, e.strerror or str(e)) from e
    return decode_image(data, label, max_pixels=max_pixels)


def decode_image(data, label, *, max_pixels=MAX_PIXELS):
    """Decode image bytes; ``label`` names them in errors. See :func:`load_image`."""
    if not data:
        raise ImageError(label, "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    label,
                    f"{width}x{height} is {width * height / 1e6:.0f} MP, over the "
                    f"{max_pixels / 1e6:.0f} MP limit (a decompression bomb?); "
                    "downscale it or raise max_pixels",
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except ImageError:
        raise
    except UnidentifiedImageError as e:
        raise ImageError(label, "not an image file Pillow can read") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(label, f"decompression bomb: {e}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError.
        raise ImageError(label, f"corrupt or truncated image data ({e})") from e


def _to_rgb(image):
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / 257.0
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if image.mode == "F":
        grey = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
