"""The triplet loss against NumPy, its edges and gradients, and online triplet mining."""

import numpy as np
import pytest
import tensorflow as tf

from facetag.learn.triplet import batch_all_triplet_loss, batch_semi_hard_triplet_loss, semi_hard_triplets, triplet_loss


def numpy_triplet_loss(a, p, n, alpha=0.2):
    return np.maximum(((a - p) ** 2).sum(-1) - ((a - n) ** 2).sum(-1) + alpha, 0).sum()


def test_exported_at_the_top_level():
    import facetag

    assert facetag.triplet_loss is triplet_loss


def test_matches_numpy_on_random_data():
    rng = np.random.default_rng(0)
    a, p, n = (rng.normal(size=(16, 128)).astype(np.float32) * 0.3 for _ in range(3))
    expected = numpy_triplet_loss(a, p, n)
    assert expected > 0
    assert float(triplet_loss(None, [a, p, n])) == pytest.approx(expected, rel=1e-5)
    assert float(triplet_loss(None, np.stack([a, p, n], axis=1))) == pytest.approx(expected, rel=1e-5)


def test_course_example_value():
    """The check of the Coursera Deep Learning course's triplet-loss exercise (course 4, week 4, TensorFlow 2
    edition): seed 1, normal(mean 6, std 0.1) anchors, (1, 1) positives, (3, 4) negatives, batch 3. The
    course prints ``tf.Tensor(527.2598, shape=(), dtype=float32)``, and TensorFlow 2 (2.21 here) still draws
    the same numbers, so the course's value is asserted as it prints it (the TF1 edition drew others and
    printed 528.143). The NumPy loss of the same tensors checks the sum itself, whatever numbers TensorFlow
    draws, to float32 rounding."""
    tf.random.set_seed(1)
    y_pred = (tf.random.normal([3, 128], mean=6, stddev=0.1, seed=1),
              tf.random.normal([3, 128], mean=1, stddev=1, seed=1),
              tf.random.normal([3, 128], mean=3, stddev=4, seed=1))
    loss = float(triplet_loss(None, y_pred))
    assert loss == pytest.approx(527.2598, abs=5e-4)
    a, p, n = (t.numpy().astype(np.float64) for t in y_pred)
    assert loss == pytest.approx(numpy_triplet_loss(a, p, n), rel=1e-6)


@pytest.mark.parametrize("a, p, n, alpha, expected", [
    # The course's hand-written checks (its first four as batches of one), each with its reason.
    ([[1., 1.]], [[1., 1.]], [[1., 1.]], 5, 5.),  # d_ap = d_an = 0: the loss is alpha
    ([[1., 1.]], [[1., 1.]], [[0., 0.]], 3, 1.),  # d_ap 0, d_an 2: 0 - 2 + 3
    ([[1., 1.]], [[0., 0.]], [[1., 1.]], 0, 2.),  # d_ap 2, d_an 0
    ([[0., 0.]], [[0., 0.]], [[0., 0.]], -2, 0.),  # below zero: clipped
    ([[1., 0.], [1., 0.]], [[1., 0.], [1., 0.]], [[0., 1.], [0., 1.]], 3, 2.),  # summed over the batch: 1 + 1
    ([[1., 1.], [2., 0.]], [[0., 3.], [1., 1.]], [[1., 0.], [0., 1.]], 1, 5.),  # (5 - 1 + 1) + max(2 - 5 + 1, 0)
])
def test_hand_computed_values(a, p, n, alpha, expected):
    triplets = [np.array(x, np.float32) for x in (a, p, n)]
    assert float(triplet_loss(None, triplets, alpha=alpha)) == expected


def test_zero_when_negatives_are_far_enough():
    a = np.zeros((4, 8), np.float32)
    p = a + 0.01
    n = a + 1.0
    assert float(triplet_loss(None, [a, p, n])) == 0.0


def test_margin_edge():
    a = np.zeros((1, 2), np.float32)
    p = np.array([[0.5, 0]], np.float32)  # d_ap = 0.25
    n = np.array([[0.0, np.sqrt(0.45)]], np.float32)  # d_an = 0.45 = d_ap + alpha: exactly on the margin
    assert float(triplet_loss(None, [a, p, n])) == pytest.approx(0.0, abs=1e-6)
    assert float(triplet_loss(None, [a, p, n], alpha=0.3)) == pytest.approx(0.1, abs=1e-6)


def test_gradients_pull_positive_in_and_push_negative_out():
    a = tf.Variable([[0.0, 0.0]])
    p = tf.Variable([[1.0, 0.0]])
    n = tf.Variable([[0.0, 1.0]])
    with tf.GradientTape() as tape:
        loss = triplet_loss(None, [a, p, n])
    ga, gp, gn = tape.gradient(loss, [a, p, n])
    np.testing.assert_allclose(gp.numpy(), [[2.0, 0.0]])  # d/dp ||a-p||^2 = 2 (p - a)
    np.testing.assert_allclose(gn.numpy(), [[0.0, -2.0]])  # d/dn -||a-n||^2 = -2 (n - a)
    np.testing.assert_allclose(ga.numpy(), [[-2.0, 2.0]])


def test_no_gradient_past_the_margin():
    a, p, n = (tf.Variable([[0.0]]), tf.Variable([[0.1]]), tf.Variable([[2.0]]))
    with tf.GradientTape() as tape:
        loss = triplet_loss(None, [a, p, n])
    assert all(float(tf.reduce_sum(tf.abs(g))) == 0.0 for g in tape.gradient(loss, [a, p, n]))


def test_usable_as_a_keras_loss():
    inputs = tf.keras.Input((3, 4))
    outputs = tf.keras.layers.Dense(2)(inputs)
    model = tf.keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=triplet_loss)
    x = np.random.default_rng(0).normal(size=(8, 3, 4)).astype(np.float32)
    history = model.fit(x, np.zeros((8,)), epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


# A hand-made 1-D batch: person 0 at 0.0 and 0.3, person 1 at 0.5 and 2.0, person 2 at 0.35.
LABELS = np.array([0, 0, 1, 1, 2])
POINTS = np.array([[0.0], [0.3], [0.5], [2.0], [0.35]], np.float32)


def test_semi_hard_mining_picks_the_nearest_negative_beyond_the_positive():
    triplets = {tuple(t) for t in semi_hard_triplets(LABELS, POINTS).numpy()}
    # anchor 0, positive 1 (d=0.09): negatives 4 (0.1225) and 2 (0.25) lie beyond; the nearest is 4.
    # anchor 1, positive 0 (d=0.09): negative 4 is at 0.0025 (closer than the positive), 2 at 0.04, 3 at 2.89 -> 3.
    # anchor 2, positive 3 (d=2.25): negatives 0 (0.25), 1 (0.04), 4 (0.0225) are all closer -> the furthest, 0.
    # anchor 3, positive 2 (d=2.25): negatives 0 (4.0), 1 (2.89), 4 (2.7225) are all beyond -> the nearest, 4.
    assert triplets == {(0, 1, 4), (1, 0, 3), (2, 3, 0), (3, 2, 4)}


def test_batch_all_counts_only_valid_violating_triplets():
    loss, fraction = batch_all_triplet_loss(LABELS, POINTS)
    d = (POINTS - POINTS.T) ** 2
    values = [d[a, p] - d[a, n] + 0.2 for a in range(5) for p in range(5) for n in range(5)
              if a != p and LABELS[a] == LABELS[p] and LABELS[n] != LABELS[a]]
    active = [v for v in values if v > 0]
    assert float(loss) == pytest.approx(np.mean(active), rel=1e-5)
    assert float(fraction) == pytest.approx(len(active) / len(values), rel=1e-5)


def test_semi_hard_loss_is_the_triplet_loss_of_the_mined_triplets():
    triplets = semi_hard_triplets(LABELS, POINTS).numpy()
    a, p, n = (POINTS[triplets[:, i]] for i in range(3))
    expected = numpy_triplet_loss(a, p, n) / len(triplets)
    assert float(batch_semi_hard_triplet_loss(LABELS, tf.constant(POINTS))) == pytest.approx(expected, rel=1e-5)
