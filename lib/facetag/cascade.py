"""MTCNN's three-network cascade as one compiled TensorFlow function.

The ``mtcnn`` package supplies the networks and their weights; its own
``MTCNN.detect_faces`` runs them eagerly with NumPy between the stages, and on
photos of up to a few megapixels that glue (a dispatch per pyramid level,
quadratic NMS matrices in float64, array copies) costs more than the networks.
Here the whole cascade is one graph, traced once per process for any photo
size:

0. the photo, if larger than the size it is searched at, is shrunk in the
   graph (area averaging, twice as fast as Pillow's bilinear on 2-12 MP);
1. PNet over the scale pyramid (a ``tf.while_loop``, so TensorFlow may run
   levels side by side), proposals above ``PNET_THRESHOLD``, NMS per level and
   across levels;
2. RNet on 24x24 crops of the proposals, NMS;
3. ONet on 48x48 crops: final boxes, scores and the five landmarks.

Every threshold, the pyramid and the suppression rule are the package's
(mtcnn 1.0.0), so the same faces come out; coordinates are computed in
float64 as the package does.
"""

import numpy as np

#: The package's defaults: pyramid step, smallest PNet input, per-stage score
#: thresholds and NMS overlaps.
SCALE_FACTOR = 0.709
PNET_INPUT = 12
PNET_THRESHOLD, PNET_LEVEL_NMS, PNET_NMS = 0.6, 0.5, 0.7
RNET_THRESHOLD, RNET_NMS = 0.7, 0.7
ONET_THRESHOLD, ONET_NMS = 0.8, 0.7

#: Most boxes a stage of the ordinary cascade takes; the crowd cascade takes any
#: number, this many at a time (NMS memory: boxes x this; RNet/ONet crops per call).
NMS_BLOCK = 512


def pyramid_scales(height, width, min_face_size):
    """The package's scale pyramid (``build_scale_pyramid``): PNet sees a
    ``min_face_size`` face as 12 px at the first level, then 0.709x smaller
    levels down to a 12 px photo."""
    if min(height, width) < PNET_INPUT:  # no level at all (and log(0) for a 0 px side)
        return np.zeros(0)
    count = round(-((np.log(min(height, width) / PNET_INPUT) / np.log(SCALE_FACTOR)) + 1))
    return (PNET_INPUT / min_face_size) * SCALE_FACTOR ** np.arange(max(count, 0))


def load_networks():
    """PNet, RNet and ONet as the package builds them, with its bundled weights."""
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    networks = []
    for network, weights in ((PNet(), "pnet.lz4"), (RNet(), "rnet.lz4"), (ONet(), "onet.lz4")):
        network.build()
        network.set_weights(load_weights(weights))
        networks.append(network)
    return networks


def fast_pnet(pnet):
    """PNet as plain TensorFlow ops on the Keras model's weights, a fifth faster
    on large pyramid levels: its two 1x1 heads run as one convolution, and the
    face score is the sigmoid of the two class logits' difference (the same
    number as the softmax's second channel) instead of a 2-channel softmax."""
    import tensorflow as tf

    (k1, b1, a1, k2, b2, a2, k3, b3, a3, box_kernel, box_bias, class_kernel, class_bias) = (
        weight.numpy() for weight in pnet.weights)
    head = tf.constant(np.concatenate([box_kernel, class_kernel[..., 1:] - class_kernel[..., :1]], axis=-1))
    head_bias = tf.constant(np.concatenate([box_bias, class_bias[1:] - class_bias[:1]]))

    def conv_prelu(x, kernel, bias, alpha):  # as Keras' PReLU computes it
        x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "VALID"), bias)
        return tf.nn.relu(x) - alpha * tf.nn.relu(-x)

    def forward(images):
        x = tf.nn.max_pool2d(conv_prelu(images, k1, b1, a1), 2, 2, "SAME")
        x = conv_prelu(conv_prelu(x, k2, b2, a2), k3, b3, a3)
        out = tf.nn.bias_add(tf.nn.conv2d(x, head, 1, "VALID"), head_bias)
        return out[..., :4], tf.sigmoid(out[..., 4])

    return forward


def suppress(boxes, threshold, method="union", in_blocks=False):
    """The package's NMS (``mtcnn.utils.bboxes.smart_nms_from_bboxes``) on
    score-sorted boxes: a box is dropped when any higher-scored box (kept or
    not) overlaps it by more than ``threshold``.

    All pairs at once, as the package does, or with ``in_blocks`` each box
    against ``NMS_BLOCK`` of them at a time, so that memory stays linear in
    the number of boxes (a crowd photo gives PNet thousands per level).
    ``boxes``: (N, 4 + k) rows whose first four columns are (x1, y1, x2, y2).
    """
    import tensorflow as tf

    count = tf.shape(boxes)[0]
    x1, y1, x2, y2 = tf.unstack(boxes[:, :4], axis=1)
    area = (x2 - x1) * (y2 - y1)

    def overlapped(start, block):
        """Which boxes of ``block`` (boxes start, start + 1, ...) an earlier box overlaps."""
        bx1, by1, bx2, by2 = tf.unstack(block, axis=1)
        block_area = (bx2 - bx1) * (by2 - by1)
        width = tf.nn.relu(tf.minimum(x2[:, None], bx2[None, :]) - tf.maximum(x1[:, None], bx1[None, :]))
        height = tf.nn.relu(tf.minimum(y2[:, None], by2[None, :]) - tf.maximum(y1[:, None], by1[None, :]))
        inter = width * height
        if method == "union":
            overlap = inter / (area[:, None] + block_area[None, :] - inter)
        else:
            overlap = inter / tf.minimum(area[:, None], block_area[None, :])
        earlier = tf.range(count)[:, None] < start + tf.range(tf.shape(block)[0])[None, :]
        return tf.reduce_any((overlap > threshold) & earlier, axis=0)

    def dropped_in_blocks():
        padded = tf.pad(boxes[:, :4], [[0, (-count) % NMS_BLOCK], [0, 0]])
        dropped = tf.map_fn(lambda start: overlapped(start, padded[start:start + NMS_BLOCK]),
                            tf.range(0, tf.shape(padded)[0], NMS_BLOCK),
                            fn_output_signature=tf.TensorSpec([NMS_BLOCK], tf.bool), parallel_iterations=1)
        return tf.reshape(dropped, [-1])[:count]

    dropped = dropped_in_blocks() if in_blocks else overlapped(0, boxes[:, :4])
    return tf.boolean_mask(boxes, ~dropped)


def compile_cascade(pnet, rnet, onet, crowd=False):
    """``cascade(photo, size, scales) -> (boxes, scores, landmarks, overflowed)`` as one tf.function.

    ``photo``: (H, W, 3) uint8 RGB; ``size``: (height, width) to search it at;
    ``scales``: :func:`pyramid_scales` of that size. Returns float64 tensors
    in pixels of the searched size: boxes (N, 4) as (left, top, right, bottom),
    scores (N,), landmarks (N, 10) as the package orders them (five x, then
    five y), highest score first. Nothing is clipped or rounded.

    The ordinary cascade takes at most ``NMS_BLOCK`` boxes into each stage and
    says ``overflowed`` when a photo had more (a crowd): its results are then
    incomplete, and the photo is for the ``crowd=True`` cascade, which takes
    any number, a block at a time. The crowd cascade costs 0.4 s more to
    compile and 5-10% more per photo, so it is built only when a photo needs it.
    """
    import tensorflow as tf

    def by_score(rows):
        return tf.gather(rows, tf.argsort(rows[:, 4], direction="DESCENDING"))

    def square(boxes):
        x1, y1, x2, y2 = tf.unstack(boxes[:, :4], axis=1)
        side = tf.maximum(x2 - x1, y2 - y1)
        left, top = x1 + (x2 - x1) * 0.5 - side * 0.5, y1 + (y2 - y1) * 0.5 - side * 0.5
        return tf.concat([tf.stack([left, top, left + side, top + side], axis=1), boxes[:, 4:]], axis=1)

    def refine(boxes, offsets):
        size = tf.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, axis=1)
        return boxes[:, :4] + offsets * size

    def nms(rows, threshold, method="union"):
        """(kept rows, whether rows were cut off): the ordinary cascade's stages take NMS_BLOCK rows."""
        rows = by_score(rows)
        if crowd:
            return suppress(rows, threshold, method, in_blocks=True), tf.constant(False)
        return suppress(rows[:NMS_BLOCK], threshold, method), tf.shape(rows)[0] > NMS_BLOCK

    def run_on_crops(network, image, boxes, side, widths):
        """``network``'s outputs (one column count in ``widths`` each) for each box's ``side`` x ``side``
        crop of ``image``; the crowd cascade's thousands of boxes go NMS_BLOCK at a time (RNet's
        activations for all of them at once would take gigabytes)."""
        shape = tf.cast(tf.shape(image)[1:3], tf.float64)
        normalised = tf.cast(tf.stack([boxes[:, 1] / shape[0], boxes[:, 0] / shape[1],
                                       boxes[:, 3] / shape[0], boxes[:, 2] / shape[1]], axis=1), tf.float32)

        def call(part):
            patches = tf.image.crop_and_resize(image, part, tf.zeros([tf.shape(part)[0]], tf.int32), (side, side))
            # One blank patch more, dropped after: oneDNN's convolution returns a wrongly shaped empty batch.
            outputs = network(tf.concat([patches, tf.zeros([1, side, side, 3])], axis=0))
            return [tf.cast(output[:-1], tf.float64) for output in outputs]

        if not crowd:
            return call(normalised)

        def block(start, results):
            return start + NMS_BLOCK, [result.write(start // NMS_BLOCK, output) for result, output in
                                       zip(results, call(normalised[start:start + NMS_BLOCK]))]

        results = [tf.TensorArray(tf.float64, size=0, dynamic_size=True, infer_shape=False, element_shape=[None, width])
                   for width in widths]
        results = tf.while_loop(lambda start, _: start < tf.shape(boxes)[0], block, (0, results))[1]
        return [result.concat() for result in results]

    proposal_network = fast_pnet(pnet)

    def level_proposals(level, scale):
        offsets, score = proposal_network(level)
        offsets, score = offsets[0], score[0]
        cells = tf.where(score > PNET_THRESHOLD)  # (row, column) of each 12x12 window, stride 2
        corner = tf.cast(cells, tf.float64) * 2.0
        offset = tf.cast(tf.gather_nd(offsets, cells), tf.float64) * 11.0
        rows = tf.stack([corner[:, 1] + 1 + offset[:, 0], corner[:, 0] + 1 + offset[:, 1],
                         corner[:, 1] + 12 + offset[:, 2], corner[:, 0] + 12 + offset[:, 3]], axis=1) / scale
        rows = tf.concat([rows, tf.cast(tf.gather_nd(score, cells), tf.float64)[:, None]], axis=1)
        return nms(rows, PNET_LEVEL_NMS)

    def pyramid_proposals(image, scales):
        """(proposals of every level, whether a level's were cut off)."""
        shape = tf.cast(tf.shape(image)[1:3], tf.float64)

        def level(i, found, cut):
            resized = tf.image.resize(image, tf.cast(shape * scales[i], tf.int32), method=tf.image.ResizeMethod.AREA)
            proposals, level_cut = level_proposals(resized, scales[i])
            return i + 1, found.write(i, proposals), cut | level_cut

        found = tf.TensorArray(tf.float64, size=tf.size(scales), infer_shape=False, element_shape=[None, 5])
        _, found, cut = tf.while_loop(lambda i, *_: i < tf.size(scales), level, (0, found, tf.constant(False)))
        return found.concat(), cut

    # autograph=False: the loop is an explicit tf.while_loop, and converting the code cost 0.4 s per process.
    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([2], tf.int32), tf.TensorSpec([None], tf.float64)])
    def cascade(photo, size, scales):
        image = tf.cond(tf.reduce_all(tf.shape(photo)[:2] == size),
                        lambda: tf.cast(photo, tf.float32)[None],
                        lambda: tf.image.resize(photo[None], size, method=tf.image.ResizeMethod.AREA))
        image = (image - 127.5) / 128.0
        proposals, cut_in_levels = pyramid_proposals(image, scales)
        proposals, cut_across_levels = nms(proposals, PNET_NMS)
        proposals = square(proposals)

        offsets, probabilities = run_on_crops(rnet, image, proposals, 24, (4, 2))
        scored = tf.concat([refine(proposals, offsets), probabilities[:, 1:]], axis=1)
        candidates, cut_at_rnet = nms(scored[scored[:, 4] > RNET_THRESHOLD], RNET_NMS)
        candidates = square(candidates)

        offsets, points, probabilities = run_on_crops(onet, image, candidates, 48, (4, 10, 2))
        width = candidates[:, 2:3] - candidates[:, 0:1] + 1
        height = candidates[:, 3:4] - candidates[:, 1:2] + 1
        points = tf.concat([width * points[:, :5] + candidates[:, 0:1] - 1,
                            height * points[:, 5:] + candidates[:, 1:2] - 1], axis=1)
        faces = tf.concat([refine(candidates, offsets), probabilities[:, 1:], points], axis=1)
        faces, cut_at_onet = nms(faces[faces[:, 4] > ONET_THRESHOLD], ONET_NMS, method="min")
        overflowed = cut_in_levels | cut_across_levels | cut_at_rnet | cut_at_onet
        return faces[:, :4], faces[:, 4], faces[:, 5:], overflowed

    return cascade
