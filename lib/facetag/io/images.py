"""Decode any image file a user has into one RGB uint8 array.

Everything in facetag decodes through :func:`load_image`, because the face
detector's results change with the decoder: one decoder everywhere keeps the
library, the command line and the Beam jobs in agreement.

Pillow reads JPEG, PNG, GIF, BMP, TIFF, WebP, AVIF and more; the
``pillow-heif`` plugin adds HEIC/HEIF (iPhone photos); camera RAW files go
through LibRaw (``rawpy``). Multi-page and animated files give their first
frame.
"""

import functools
import io
import math
import os
import struct
from dataclasses import dataclass, replace

import numpy as np
import pillow_heif
from PIL import Image, ImageOps

from facetag.errors import ImageError
from facetag.io.files import filesystems, is_remote
from facetag.io.limits import DEFAULT_LIMITS, shape_problem
from facetag.io.listing import classify

#: Camera RAW file name endings decoded with LibRaw (Pillow would read only the small TIFF thumbnail of some).
RAW_SUFFIXES = frozenset(
    ".3fr .ari .arw .cr2 .cr3 .crw .dcr .dng .erf .iiq .k25 .kdc .mef .mos .mrw .nef .nrw .orf .pef .raf .raw "
    ".rw2 .rwl .sr2 .srf .srw .x3f".split())

#: A RAW file's embedded JPEG preview is used when its longer side is at least this (the size photos are searched
#: at for faces, facetag.vision.detection.DETECTION_MAX_SIDE); smaller ones are demosaiced at half size instead.
RAW_PREVIEW_MIN_SIDE = 1280

# What Pillow and its plugins raise for a corrupt file; anything else is a bug, reported as unexpected.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
_READ_CHUNK = 16 << 20
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# LibRaw's sizes.flip -> the rotation that shows the image upright.
_RAW_FLIPS = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


def load_image(source, *, name=None, limits=DEFAULT_LIMITS, max_pixels=None):
    """Return the image as an (H, W, 3) RGB uint8 array.

    ``source`` is a path or the file's bytes; ``name`` labels bytes in error
    messages. Formats: see the module's description; EXIF orientation is
    applied; grey, palette, alpha, CMYK and 16-bit images are converted
    (transparent areas become white). Raises :class:`ImageError` naming the
    file and the reason for an empty, truncated, corrupt or non-image file, or
    one over a limit (facetag.io.limits: file size, pixels, aspect ratio;
    ``max_pixels`` overrides the limits' pixel count).
    """
    if max_pixels is not None:
        limits = replace(limits, max_pixels=max_pixels)
    return decode_image(*image_source(source, name=name, max_bytes=limits.max_file_bytes), limits=limits)


def image_source(source, *, name=None, max_bytes=DEFAULT_LIMITS.max_file_bytes):
    """``(bytes, label)`` of a path (local or remote) or of bytes (labelled ``name``, else ``<bytes>``); :class:`ImageError`
    naming the file when it cannot be read."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    label = name or os.fspath(source)
    if is_remote(label):
        return read_file(source, max_bytes), label
    _check_regular_file(source, label)
    try:
        with open(source, "rb") as f:
            return read_limited(f, label, max_bytes), label
    except OSError as e:
        raise ImageError(label, file_error_reason(e)) from e


def read_limited(f, label, max_bytes=DEFAULT_LIMITS.max_file_bytes):
    """An open file's bytes; :class:`ImageError` when it holds more than ``max_bytes``, having read no more."""
    chunks, size = [], 0
    while chunk := f.read(min(_READ_CHUNK, max_bytes + 1 - size)):  # not one read: it would allocate max_bytes
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise ImageError(label, f"the file is over the {max_bytes / 1e6:g} MB limit: not read (a video or disk "
                                    "image? raise the limit if it is a photo)")
    return b"".join(chunks)


def read_file(uri, max_bytes=DEFAULT_LIMITS.max_file_bytes):
    """A local or remote file's bytes (any Beam FileSystems path), as they are: a ``.gz`` is not decompressed.

    Raises :class:`ImageError` with a reason a person can act on (over the size limit, permission denied...).
    """
    from apache_beam.io.filesystem import CompressionTypes

    if not is_remote(uri):
        _check_regular_file(uri, uri)
    try:
        with filesystems(uri).open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return read_limited(f, uri, max_bytes)
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001 - remote filesystems raise their own errors, not OSError
        raise ImageError(uri, file_error_reason(e)) from e


def _check_regular_file(path, label):
    # Reading a pipe named like a photo (named directly, in a gallery CSV, or swapped in since the listing)
    # would block forever: nothing but a regular file is opened.
    problem = classify(os.fspath(path)).problem
    if problem:
        raise ImageError(label, problem)


def file_error_reason(error):
    """What an error from opening or reading a file means to a person."""
    if isinstance(error, PermissionError):
        return "permission denied: facetag may not read this file (check its owner and mode)"
    if isinstance(error, IsADirectoryError):
        return "a folder, not a photo"
    if isinstance(error, FileNotFoundError):
        return "the file is gone (deleted or moved while the job ran?)"
    if isinstance(error, OSError) and error.strerror:
        return f"the file cannot be read: {error.strerror}"
    return f"the file cannot be read ({type(error).__name__}): check that it still exists and is readable"


def decode_image(data, label, *, limits=DEFAULT_LIMITS):
    """Decode image bytes; ``label`` names them in errors. See :func:`load_image`."""
    return decode_reduced(data, label, limits=limits).image


@dataclass(frozen=True)
class Decoded:
    """An upright RGB photo, decoded at full size or ``1/scale`` of it."""

    image: np.ndarray  # (H, W, 3) uint8
    scale: int  # 1, 2, 4 or 8: full-size pixels per pixel of ``image``
    size: tuple  # (width, height) of the full-size upright photo


def decode_reduced(data, label, *, limits=DEFAULT_LIMITS, min_side=None):
    """:func:`decode_image`, but a JPEG whose longer side is over ``min_side`` comes out at 1/2, 1/4 or
    1/8 of its size, the smallest of these whose longer side is still at least ``min_side``.

    libjpeg scales in the DCT domain as it decodes (Pillow's draft mode): a 12-megapixel JPEG at 1/2
    decodes several times faster than at full size, and nothing larger has to be resized down.
    Other formats decode at full size. Returns a :class:`Decoded`.
    """
    if not data:
        raise ImageError(label, "the file is empty")
    _prepare_pillow()
    # The ending picks the decoder to try first; the other is tried when it fails (wrong endings both ways).
    # Pillow would read a RAW file only if it is TIFF-based (its thumbnail), so LibRaw is tried only then.
    raw_named = os.path.splitext(label)[1].lower() in RAW_SUFFIXES
    decoders = [_open_raw, _open] if raw_named else [_open] + ([_open_raw] if data[:4] in _TIFF_MAGIC else [])
    errors = []
    for decoder in decoders:
        try:
            image, full_size = decoder(data, label, limits, min_side)
            stored_size = image.size
            upright = _upright(image)
            if upright.size != stored_size:  # turned a quarter by its EXIF orientation
                full_size = full_size[::-1]
            return Decoded(_to_rgb(upright), round(full_size[0] / upright.size[0]), tuple(full_size))
        except ImageError as e:
            errors.append(e)
    raise errors[0]


@functools.cache
def _prepare_pillow():
    """Pillow set up for facetag, once, when it first decodes (importing facetag changes nothing): HEIF
    photos readable, and Pillow's decompression-bomb check off, since facetag checks every image's size
    against its own limit (facetag.io.limits) from the header, before decoding; Pillow's check would
    refuse some of those with another figure, or warn on stderr. Both are process-wide Pillow settings."""
    pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = None


def _open(data, label, limits, min_side=None):
    """(the image, its full size as stored): see :func:`decode_reduced` for ``min_side``."""
    try:
        image = Image.open(io.BytesIO(data))
    except _DECODE_ERRORS as e:  # UnidentifiedImageError included
        raise ImageError(label, _not_an_image(data)) from e
    kind = image.format or "image"
    full_size = image.size
    problem = shape_problem(*full_size, limits)
    if problem:
        raise ImageError(label, problem)
    if min_side and image.format == "JPEG" and max(full_size) > min_side:
        shrink = min_side / max(full_size)
        image.draft(None, (math.ceil(full_size[0] * shrink), math.ceil(full_size[1] * shrink)))
    try:
        image.load()
    except _DECODE_ERRORS as e:
        if "truncated" in str(e) or isinstance(e, EOFError):
            raise ImageError(label, f"the {kind} data is cut short (truncated file, e.g. an interrupted copy)") from e
        raise ImageError(label, f"the {kind} data is corrupt: it cannot be decoded") from e
    return image, full_size


#: File signatures, to tell a damaged photo from a file that never was one.
_TIFF_MAGIC = (b"II*\0", b"MM\0*")
_SIGNATURES = ((b"\xff\xd8", "JPEG"), (b"\x89PNG", "PNG"), (b"GIF8", "GIF"), (b"II*\0", "TIFF"), (b"MM\0*", "TIFF"),
               (b"BM", "BMP"))


def _not_an_image(data):
    head = data[:512].lstrip().lower()
    kind = next((k for magic, k in _SIGNATURES if data.startswith(magic)), None)
    if data[4:8] == b"ftyp":
        kind = "AVIF" if data[8:12] in (b"avif", b"avis") else "HEIF"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WebP"
    if kind:
        return f"the {kind} data is corrupt or cut short: it cannot be read as an image"
    if not data.strip(b"\0"):
        return "the file holds only zero bytes (a failed copy or disk error?)"
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<")):
        return "an HTML or XML page, not an image (saved from a web browser?)"
    return "not an image file facetag can read (see the README for the formats it reads)"


def _open_raw(data, label, limits, min_side=None):
    """(the image, its full size as stored); RAW files are not reduced (their preview already is)."""
    import rawpy

    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            problem = shape_problem(sizes.width, sizes.height, limits)
            if problem:
                raise ImageError(label, problem)
            preview = _raw_preview(raw)
            if preview is not None:
                transpose = _RAW_FLIPS.get(sizes.flip)
                image = preview.transpose(transpose) if transpose is not None else preview
            else:  # postprocess applies the camera's orientation itself
                image = Image.fromarray(raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8))
            return image, image.size
    except ImageError:
        raise
    except rawpy.LibRawFileUnsupportedError as e:
        raise ImageError(label, "not a camera RAW file LibRaw can read (wrong file ending?)") from e
    except rawpy.LibRawError as e:
        raise ImageError(label, "the RAW data is corrupt or cut short: it cannot be decoded") from e


def _raw_preview(raw):
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            image = Image.open(io.BytesIO(thumb.data))
            image.load()
        except _DECODE_ERRORS:  # a broken preview: demosaic the RAW data instead
            return None
    else:
        image = Image.fromarray(thumb.data)
    return image if max(image.size) >= RAW_PREVIEW_MIN_SIDE else None


def _upright(image):
    try:
        ImageOps.exif_transpose(image, in_place=True)  # in place: otherwise every photo is copied once more
    except _DECODE_ERRORS:  # broken EXIF: the pixels are fine, only the orientation is lost
        pass
    return image


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
    if image.mode != "RGB":  # convert() copies even an RGB image
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
