"""Cut a detected face out of a photo the way the FaceNet weights expect it.

The CASIA-WebFace Inception-ResNet-v1 was trained on MTCNN boxes widened by a
margin, resized to 160x160 RGB and standardised as (x - 127.5) / 128. The
choices below were measured on lfw_dev pairs; weights/README.md has the table.
"""

import numpy as np
from PIL import Image

CROP_SIZE = 160

#: Margin added around the MTCNN box, as a fraction of the box's larger side
#: and split evenly between the two sides. FaceNet used 32 px on LFW's ~100 px
#: faces; a fraction keeps the crop the same for any photo resolution.
DEFAULT_MARGIN = 0.25

#: Bump when anything here changes how crops look: it is part of every model id.
PREPROCESSING_VERSION = "crop-v2"


#: What fills the part of a crop that lies outside the photo (a face touching the border, a
#: tight face crop): "mean" the photo's mean colour, "reflect" the photo mirrored at its edge,
#: "clip" none (the crop is cut at the border and stretched to a square, as crop-v1 did).
#: Measured in weights/README.md.
DEFAULT_BORDER = "mean"
BORDERS = ("mean", "reflect", "clip")


def crop_region(box, margin):
    """The square-margined region (x0, y0, x1, y1) around ``box``, before any clipping to the photo."""
    left, top, right, bottom = box
    pad = margin * max(right - left, bottom - top) / 2
    return (int(np.floor(left - pad)), int(np.floor(top - pad)), int(np.ceil(right + pad)), int(np.ceil(bottom + pad)))


def crop_inside(image_shape, box, margin):
    """True when the margined crop lies inside the photo, so every ``border`` gives the same crop."""
    x0, y0, x1, y1 = crop_region(box, margin)
    return x0 >= 0 and y0 >= 0 and x1 <= image_shape[1] and y1 <= image_shape[0]


def crop_face(image, box, *, margin=DEFAULT_MARGIN, size=CROP_SIZE, border=DEFAULT_BORDER):
    """Return the face in ``box`` (left, top, right, bottom) as a (size, size, 3) uint8 crop.

    The box is widened by ``margin`` times its larger side and resized with
    bilinear interpolation; where the widened box leaves the image, ``border``
    says what fills it (see DEFAULT_BORDER).
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = crop_region(box, margin)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    crop = image[cy0:cy1, cx0:cx1]
    if border != "clip" and (x0, y0, x1, y1) != (cx0, cy0, cx1, cy1):
        widths = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1), (0, 0))
        if border == "reflect":
            # np.pad reflects at most the crop's own size per call; repeat for very tight crops.
            while any(a > crop.shape[i] - 1 or b > crop.shape[i] - 1 for i, (a, b) in enumerate(widths[:2])):
                step = tuple((min(a, crop.shape[i] - 1), min(b, crop.shape[i] - 1)) for i, (a, b) in enumerate(widths[:2]))
                crop = np.pad(crop, (*step, (0, 0)), mode="reflect")
                widths = tuple((a - sa, b - sb) for (a, b), (sa, sb) in zip(widths[:2], step)) + ((0, 0),)
            crop = np.pad(crop, widths, mode="reflect")
        elif border == "mean":
            mean = image.reshape(-1, image.shape[-1]).mean(axis=0)
            padded = np.empty((y1 - y0, x1 - x0, image.shape[-1]), np.uint8)
            padded[:] = np.round(mean).astype(np.uint8)
            padded[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = crop
            crop = padded
        else:
            raise ValueError(f"unknown border {border!r}; choose one of {', '.join(BORDERS)}")
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def centre_box(image_shape, fraction=0.5):
    """A square box of ``fraction`` of the shorter side at the image centre.

    Used for photos that are known to be face crops (LFW, the course's 96x96
    images) when the detector finds nothing.
    """
    height, width = image_shape[:2]
    side = fraction * min(height, width)
    cx, cy = width / 2, height / 2
    return (int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))


def standardize(crops):
    """FaceNet's fixed image standardisation, (x - 127.5) / 128, as float32."""
    return (np.asarray(crops, dtype=np.float32) - 127.5) / 128.0


def to_channels_last(batch):
    """Accept (N, H, W, C) or the course's channels-first (N, C, H, W); return (N, H, W, C).

    A single image (3 dimensions) is also accepted and returned as a batch of one.
    """
    batch = np.asarray(batch)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4:
        raise ValueError(f"expected a batch of images (N, H, W, 3) or (N, 3, H, W), got shape {batch.shape}")
    if batch.shape[-1] == 3:
        return batch
    if batch.shape[1] == 3:
        return np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
    raise ValueError(f"cannot tell the channel axis of shape {batch.shape}: neither the last nor the second axis is 3")
