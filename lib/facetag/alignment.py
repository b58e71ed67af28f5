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
PREPROCESSING_VERSION = "crop-v1"


def crop_face(image, box, *, margin=DEFAULT_MARGIN, size=CROP_SIZE):
    """Return the face in ``box`` (left, top, right, bottom) as a (size, size, 3) uint8 crop.

    The box is widened by ``margin`` times its larger side, clipped to the
    image, and resized with bilinear interpolation.
    """
    height, width = image.shape[:2]
    left, top, right, bottom = box
    pad = margin * max(right - left, bottom - top) / 2
    x0 = int(max(np.floor(left - pad), 0))
    y0 = int(max(np.floor(top - pad), 0))
    x1 = int(min(np.ceil(right + pad), width))
    y1 = int(min(np.ceil(bottom + pad), height))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    crop = Image.fromarray(image[y0:y1, x0:x1])
    return np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=np.uint8)


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
