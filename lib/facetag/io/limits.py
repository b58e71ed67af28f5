"""The limits that keep one photo from exhausting or stalling a worker, with why each default is what it is.

Every limit ends a photo in ``failed`` (or, for an image too small to hold a
face, ``no_face``) with a reason that names the limit, never in a crash.
"""

from dataclasses import dataclass

#: Files are read up to this many bytes; a larger one is refused unread. The
#: largest ordinary photos are 100 MP medium-format RAW files of 150-200 MB;
#: anything bigger in a photo archive is a video or a disk image.
MAX_FILE_BYTES = 200_000_000

#: Larger images are refused as likely decompression bombs, from the header,
#: before any pixel is decoded. 100 MP is above any camera a photo archive is
#: likely to hold (a 61 MP full-frame sensor, a 100 MP medium-format back) and
#: keeps a decoded photo under 300 MB of RGB.
MAX_PIXELS = 100_000_000

#: Longer side over shorter side beyond which an image is refused as "too
#: narrow to hold a face". A 360-degree panorama is about 8:1; at 20:1 a photo
#: searched at 1,280 px is 64 px high, three of the smallest faces stacked.
MAX_ASPECT = 20.0

#: Seconds one photo may take to be decoded and searched before it is given up
#: (``failed``) so the worker moves on. A 100 MP photo takes about 3 s here and
#: a half-size RAW demosaic about 2 s; two minutes leaves room for a loaded or
#: slower machine while a pathological file cannot hold a worker for long.
TIME_BUDGET_S = 120.0


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = MAX_FILE_BYTES
    max_pixels: int = MAX_PIXELS
    max_aspect: float = MAX_ASPECT
    time_budget_s: float = TIME_BUDGET_S


DEFAULT_LIMITS = Limits()


def shape_problem(width, height, limits=DEFAULT_LIMITS):
    """Why an image of this size cannot be used (reason text), or None. Checked from the header, before decoding."""
    if width * height > limits.max_pixels:
        return (f"image is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels), over the "
                f"{limits.max_pixels / 1e6:.0f}-megapixel limit: downscale it, or raise the limit if it is a photo")
    if max(width, height) > limits.max_aspect * max(min(width, height), 1):
        return f"image is {width}×{height} pixels: too narrow to hold a face (sides over {limits.max_aspect:g}:1)"
    return None


def too_small_for_faces(width, height, min_face_size):
    """The no_face reason for an image smaller than the smallest face the detector looks for, or None."""
    if min(width, height) < min_face_size:
        return (f"image is {width}×{height} pixels: smaller than the smallest face the detector finds "
                f"({min_face_size} pixels)")
    return None
