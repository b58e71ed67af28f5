"""Cut a detected face out of a photo the way each encoder's weights expect it.

The CASIA-WebFace Inception-ResNet-v1 (FaceNet) was trained on MTCNN boxes widened by a
margin, resized to 160x160 RGB and standardised as (x - 127.5) / 128 (:func:`crop_face`). The
choices below were measured on lfw_dev pairs; weights/README.md has the table. dlib's ResNet
was trained on face chips aligned by their landmarks (:func:`align_face`).
"""

import math

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


#: dlib's face chip: 150x150 pixels, the face's landmarks moved to where dlib's mean face has them
#: with a padding of a quarter of the face on each side (dlib's get_face_chip_details(shape, 150, 0.25),
#: as face_recognition encodes).
CHIP_SIZE = 150
CHIP_PADDING = 0.25

#: Bump when anything in :func:`align_face` changes how chips look: it is part of the ids of models that use them.
CHIP_VERSION = "chip-v1"

#: Where MTCNN's five landmarks (facetag.vision.detection.LANDMARK_NAMES) lie on dlib's mean face, in units
#: of the face's width and height: the centres of the eyes (the means of the 68-point model's points 36-41
#: and 42-47), the nose tip (30) and the mouth corners (48, 54), from dlib's mean_face_shape_x/y
#: (dlib/image_transforms/interpolation.h). dlib aligns with its own landmark model; facetag has MTCNN's
#: landmarks already, and with these points its chips give 98.13% on lfw_dev's pairs (weights/README.md).
MEAN_FACE_LANDMARKS = np.array([[0.225490, 0.215990], [0.754760, 0.215990], [0.490127, 0.515625],
                                [0.254149, 0.780233], [0.726104, 0.780233]])


def mean_face_in(box):
    """Five landmarks for a face that fills ``box`` (left, top, right, bottom) where no detector placed any (a
    photo known to be a face crop): the mean face's (:data:`MEAN_FACE_LANDMARKS`), stretched over the box."""
    left, top, right, bottom = box
    return MEAN_FACE_LANDMARKS * (right - left, bottom - top) + (left, top)


def similarity_transform(source, target):
    """(2x2 matrix A, offset t) of the rotation, uniform scale and shift that maps the points ``source`` onto
    ``target`` best in least squares (Umeyama's method): target ~ A @ source + t."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    s, t = source - source_mean, target - target_mean
    u, sigma, vt = np.linalg.svd(t.T @ s / len(s))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])  # a rotation, never a mirror image
    matrix = (np.trace(np.diag(sigma) @ d) / (s ** 2).sum() * len(s)) * (u @ d @ vt)
    return matrix, target_mean - matrix @ source_mean


def _to_chip(landmarks, size, padding):
    """(matrix, offset) mapping the photo's pixels onto the chip's, and how many chip pixels one photo pixel
    becomes."""
    matrix, offset = similarity_transform(landmarks, (padding + MEAN_FACE_LANDMARKS) / (2 * padding + 1) * size)
    return matrix, offset, math.sqrt(abs(np.linalg.det(matrix)))


def chip_scale(landmarks, size=CHIP_SIZE, padding=CHIP_PADDING):
    """How many chip pixels one photo pixel becomes when the face with ``landmarks`` is aligned."""
    return _to_chip(landmarks, size, padding)[2]


def align_face(image, landmarks, *, size=CHIP_SIZE, padding=CHIP_PADDING):
    """The face whose five ``landmarks`` (x, y in ``image``'s pixels) are given, as a (size, size, 3) uint8
    chip: rotated, scaled and shifted so that they lie on :data:`MEAN_FACE_LANDMARKS` with ``padding``, bilinear.
    A photo much larger than the chip is first shrunk by a whole factor with a box filter, so that no
    detail is skipped (bilinear sampling alone would alias). Parts of the chip outside the photo take the
    photo's mean colour, as :func:`crop_face`'s crops do (dlib's chips are black there: on tight 112x112 face
    crops, where most of the chip's border lies outside, the mean colour gave 94.93% against 94.63% on
    colour_faces' validation pairs, and the same on full photos; weights/README.md)."""
    picture = Image.fromarray(np.asarray(image, np.uint8))
    matrix, offset, scale = _to_chip(np.asarray(landmarks, np.float64).reshape(5, 2), size, padding)
    shrink = max(1, int(1 / scale))
    if shrink > 1:  # the photo's pixels are ``shrink`` times fewer a side: the same map, scaled up
        picture = picture.reduce(shrink)
        matrix = matrix * shrink
    inverse = np.linalg.inv(matrix)  # PIL maps each chip pixel back to the photo
    back = -inverse @ offset
    coefficients = (inverse[0, 0], inverse[0, 1], back[0], inverse[1, 0], inverse[1, 1], back[1])
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]]) @ inverse.T + back
    fill = None
    if corners.min() < 0 or (corners >= picture.size).any():
        fill = tuple(int(v) for v in np.round(np.asarray(picture).reshape(-1, 3).mean(axis=0)))
    chip = picture.transform((size, size), Image.AFFINE, coefficients, Image.BILINEAR, fillcolor=fill)
    return np.asarray(chip, np.uint8)
