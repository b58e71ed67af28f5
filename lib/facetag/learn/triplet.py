"""The triplet loss of FaceNet (Schroff et al., 2015) and online triplet mining.

For an anchor a, a positive p (same person) and a negative n (someone else),
the loss is max(||a - p||^2 - ||a - n||^2 + alpha, 0), summed over the batch:
it pulls a person's faces together until every other face is at least alpha
further away.
"""

import numpy as np
import tensorflow as tf

ALPHA = 0.2


def triplet_loss(y_true, y_pred, alpha=ALPHA):
    """FaceNet's triplet loss, summed over the batch; usable as a Keras loss.

    ``y_pred`` holds the (anchor, positive, negative) encodings: a sequence of
    three (N, D) tensors, as in the course, or one (N, 3, D) tensor, which is
    what a Keras model with a stacked output passes. ``y_true`` is ignored
    (Keras requires the argument).
    """
    del y_true
    if isinstance(y_pred, (list, tuple)):
        anchor, positive, negative = y_pred
    else:
        anchor, positive, negative = tf.unstack(y_pred, num=3, axis=1)
    pos_dist = tf.reduce_sum(tf.square(anchor - positive), axis=-1)
    neg_dist = tf.reduce_sum(tf.square(anchor - negative), axis=-1)
    return tf.reduce_sum(tf.maximum(pos_dist - neg_dist + alpha, 0.0))


def squared_distances(embeddings):
    """(N, N) squared L2 distances between the rows of ``embeddings``."""
    dot = tf.matmul(embeddings, embeddings, transpose_b=True)
    norms = tf.linalg.diag_part(dot)
    return tf.maximum(norms[:, None] - 2.0 * dot + norms[None, :], 0.0)


def _triplet_masks(labels):
    """mask[a, p, n]: a != p, label[a] == label[p], label[a] != label[n]."""
    labels = tf.convert_to_tensor(labels)
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    positive = tf.logical_and(same, not_self)
    return tf.logical_and(positive[:, :, None], tf.logical_not(same)[:, None, :])


def batch_all_triplet_loss(labels, embeddings, alpha=ALPHA):
    """Mean loss over every valid triplet of the batch that still violates the margin.

    Returns ``(loss, fraction_active)``; averaging over the active triplets
    only keeps the gradient from vanishing as most triplets become easy.
    """
    d = squared_distances(embeddings)
    losses = d[:, :, None] - d[:, None, :] + alpha
    valid = tf.cast(_triplet_masks(labels), losses.dtype)
    losses = tf.maximum(losses * valid, 0.0)
    active = tf.reduce_sum(tf.cast(losses > 1e-12, losses.dtype))
    return tf.reduce_sum(losses) / (active + 1e-12), active / (tf.reduce_sum(valid) + 1e-12)


def semi_hard_triplets(labels, embeddings):
    """FaceNet's semi-hard triplet for every (anchor, positive) pair of the batch.

    The negative is the nearest one still further from the anchor than the
    positive (||a-p||^2 < ||a-n||^2: the band where the margin, not a wrong
    order, makes the loss), so training is not derailed by the hardest,
    often mislabelled, negatives. Where no negative lies beyond the positive,
    the furthest negative is taken. Returns an (M, 3) int tensor of
    (anchor, positive, negative) row indices.
    """
    embeddings = tf.convert_to_tensor(embeddings)
    d = squared_distances(embeddings)
    masks = _triplet_masks(labels)  # [a, p, n]
    pairs = tf.where(tf.reduce_any(masks, axis=2))  # (M, 2): a, p
    d_ap = tf.gather_nd(d, pairs)[:, None]
    d_an = tf.gather(d, pairs[:, 0])  # (M, N)
    negative = tf.gather_nd(masks, pairs)  # (M, N)
    beyond = tf.logical_and(negative, d_an > d_ap)
    inf = tf.constant(np.inf, d.dtype)
    nearest_beyond = tf.argmin(tf.where(beyond, d_an, inf), axis=1)
    furthest = tf.argmax(tf.where(negative, d_an, -inf), axis=1)
    n = tf.where(tf.reduce_any(beyond, axis=1), nearest_beyond, furthest)
    return tf.concat([pairs, n[:, None]], axis=1)


def batch_semi_hard_triplet_loss(labels, embeddings, alpha=ALPHA):
    """:func:`triplet_loss` over the batch's semi-hard triplets, divided by their number."""
    triplets = semi_hard_triplets(labels, tf.stop_gradient(embeddings))
    stacked = tf.gather(embeddings, triplets)  # (M, 3, D)
    count = tf.cast(tf.maximum(tf.shape(triplets)[0], 1), embeddings.dtype)
    return triplet_loss(None, stacked, alpha) / count
