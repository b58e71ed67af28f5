"""Train the 512 -> 128 projection head on frozen backbone encodings with the triplet loss.

The backbone is frozen, so every training face is encoded once (and cached,
see facetag.learn.filecache) under a few views: crops with different margins and
their mirror images. Training then only moves 512-d vectors through a small
network and takes minutes on two CPU cores. People with a single photo still
teach the head: their views are each other's positives, and they are
everybody else's negatives.
"""

import os

import numpy as np
import scipy.linalg
import tensorflow as tf

from facetag.learn.triplet import ALPHA, batch_all_triplet_loss, batch_semi_hard_triplet_loss, squared_distances
from facetag.vision.models import apply_head


class HeadTrainer:
    """Fit the projection head; ``fit`` returns self, the weights end up in ``head_``.

    ``views``: float32 (N, V, 512) backbone encodings of N photos under V
    views; ``labels``: (N,) identity of each photo. ``init`` is how the head starts: "pca",
    "whiten", "lda" (see _initial_projection) or the weights of a linear head to fine-tune. Each step draws
    ``identities_per_batch`` people and ``samples_per_identity`` (photo, view)
    samples of each, and minimises the triplet loss over the batch's
    semi-hard triplets (``mining="semi-hard"``) or all violating ones
    (``"batch-all"``). ``distill`` > 0 adds that weight of a second term: how far the batch's distances
    after the head differ from its distances before it (each scaled by its batch mean), so that a head
    that shortens an encoding which is already good (facetag-256's) keeps its geometry where the triplets
    say nothing.
    """

    def __init__(self, dim=128, hidden=0, init="pca", shrinkage=0.5, alpha=ALPHA, mining="batch-all",
                 identities_per_batch=96, samples_per_identity=3, steps=500, learning_rate=1e-4, weight_decay=1e-4,
                 distill=0.0, seed=0):
        self.dim = dim
        self.hidden = hidden
        self.init = init
        self.shrinkage = shrinkage
        self.alpha = alpha
        self.mining = mining
        self.identities_per_batch = identities_per_batch
        self.samples_per_identity = samples_per_identity
        self.steps = steps
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.distill = distill
        self.seed = seed

    def _initial_projection(self, views, labels):
        """(mean, 512 x dim projection) the head starts from."""
        flat = views.reshape(-1, views.shape[-1]).astype(np.float64)
        mean = flat.mean(axis=0)
        if self.init == "lda":
            # Linear discriminant analysis: the directions along which people differ most relative to
            # how much one person's photos and views (colour, grey copy, tight crop) differ. The
            # within-person scatter is shrunk towards its mean variance (``shrinkage``) because most
            # training people have a single photo and their scatter comes from the views alone.
            # (scikit-learn's LinearDiscriminantAnalysis does the same, but facetag does not depend on
            # scikit-learn for these few lines; scipy solves the eigenproblem.)
            people = np.repeat(np.unique(labels, return_inverse=True)[1], views.shape[1])
            counts = np.bincount(people)
            centres = np.zeros((len(counts), flat.shape[1]))
            np.add.at(centres, people, flat)
            centres /= counts[:, None]
            within = flat - centres[people]
            s_within = within.T @ within / len(flat)
            mean_variance = np.trace(s_within) / len(s_within)
            s_within = (1 - self.shrinkage) * s_within + self.shrinkage * mean_variance * np.eye(len(s_within))
            between = (centres - mean) * np.sqrt(counts)[:, None]
            s_between = between.T @ between / len(flat)
            _, vectors = scipy.linalg.eigh(s_between, s_within)  # ascending; v' S_within v = 1
            return mean, vectors[:, ::-1][:, : self.dim]
        _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
        projection = vt[: self.dim].T
        if self.init == "whiten":
            projection = projection * (singular[0] / singular[: self.dim])
        return mean, projection

    def _build(self, views, labels):
        in_dim = views.shape[-1]
        x = tf.keras.Input((in_dim,))
        h = tf.keras.layers.Dense(self.hidden, activation="relu", name="hidden")(x) if self.hidden else None
        cat = tf.keras.layers.Concatenate()([x, h]) if h is not None else x
        dense = tf.keras.layers.Dense(self.dim, name="out")
        out = tf.keras.layers.UnitNormalization()(dense(cat))
        model = tf.keras.Model(x, out)
        if isinstance(self.init, dict):  # fine-tune an existing linear head (facetag.vision.models.load_head)
            dense.set_weights([self.init["w_out"], self.init["b_out"]])
        elif self.init in ("pca", "whiten", "lda"):
            # Start from a projection centred on the training photos' mean: the backbone never saw
            # grey photos, and removing their common offset is most of the gain (weights/README.md).
            # "pca": the principal components; "whiten": the same with unit variance each; "lda": see
            # _initial_projection. The hidden branch starts switched off.
            mean, projection = self._initial_projection(views, labels)
            kernel = np.zeros((cat.shape[-1], self.dim), np.float32)
            kernel[:in_dim] = projection
            dense.set_weights([kernel, (-mean @ projection).astype(np.float32)])
        return model

    def fit(self, views, labels, log=None):
        views = np.asarray(views, np.float32)
        labels = np.asarray(labels)
        rng = np.random.default_rng(self.seed)
        tf.random.set_seed(self.seed)
        by_identity = [np.flatnonzero(labels == u) for u in np.unique(labels)]
        model = self._build(views, labels)
        self.history_ = []
        if not self.steps:  # the initialisation alone
            self.head_ = self._export(model)
            return self
        schedule = tf.keras.optimizers.schedules.CosineDecay(self.learning_rate, self.steps)
        optimizer = tf.keras.optimizers.AdamW(schedule, weight_decay=self.weight_decay)
        loss_fn = batch_semi_hard_triplet_loss if self.mining == "semi-hard" else (
            lambda y, e, a: batch_all_triplet_loss(y, e, a)[0])

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                encodings = model(x, training=True)
                loss = loss_fn(y, encodings, self.alpha)
                if self.distill:
                    loss += self.distill * distance_distortion(x, encodings)
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            return loss

        n_views = views.shape[1]
        for i in range(self.steps):
            people = rng.choice(len(by_identity), self.identities_per_batch, replace=False)
            xs, ys = [], []
            for person in people:
                photos = by_identity[person]
                samples = rng.choice(len(photos) * n_views, self.samples_per_identity,
                                     replace=len(photos) * n_views < self.samples_per_identity)
                xs.append(views[photos[samples // n_views], samples % n_views])
                ys += [person] * self.samples_per_identity
            loss = float(step(tf.constant(np.concatenate(xs)), tf.constant(ys)))
            self.history_.append(loss)
            if log and (i + 1) % 500 == 0:
                log(f"step {i + 1}/{self.steps}: loss {np.mean(self.history_[-500:]):.4f}")
        self.head_ = self._export(model)
        return self

    def _export(self, model):
        out = model.get_layer("out")
        head = {"w_out": out.kernel.numpy(), "b_out": out.bias.numpy()}
        if self.hidden:
            hidden = model.get_layer("hidden")
            head.update(w_hidden=hidden.kernel.numpy(), b_hidden=hidden.bias.numpy())
        return head

    def transform(self, encodings):
        return apply_head(self.head_, encodings)


def distance_distortion(inputs, encodings):
    """Mean squared difference of the batch's pairwise distances before (``inputs``, L2-normalised) and after
    the head, each divided by its batch mean."""
    def relative(x):
        d = tf.sqrt(tf.maximum(squared_distances(x), 1e-12))
        return d / tf.reduce_mean(d)
    return tf.reduce_mean(tf.square(relative(tf.math.l2_normalize(inputs, axis=1)) - relative(encodings)))


#: The views every training photo is encoded under: (name, FileEncoder settings besides the margin).
#: A colour photo and its grey copy are two views of one face (colour must not change identity);
#: "tight 112" is the face as tools that export tight 112x112 crops leave it. Mirror images
#: ({"flip": True}) and other margins are possible views too; weights/README.md says what was used.
VIEWS = (
    ("colour", {}),
    ("grey copy", {"grey": True}),
    ("tight 112", {"tight": 112}),
)


def training_views(paths, margins, views=VIEWS, progress=None, cache_dir=None):
    """(N, len(margins) * len(views), 512) backbone encodings of each photo under each view.

    A grey photo's grey-copy views are its plain views (not encoded twice).
    """
    from facetag.io.datasets import is_grey
    from facetag.learn.filecache import FileEncoder

    grey = np.array([is_grey(p) for p in paths], bool)
    colour_paths = [p for p, g in zip(paths, grey) if not g]
    out, detected, names = [], None, []
    for margin in margins:
        plain = {}
        for name, settings in views:
            if settings.get("grey"):
                base = plain[tuple(sorted((k, v) for k, v in settings.items() if k != "grey"))].copy()
                if colour_paths:
                    base[~grey] = FileEncoder(margin=margin, cache_dir=cache_dir, **settings).encode(colour_paths, progress=progress).encodings
                encodings = base
            else:
                files = FileEncoder(margin=margin, cache_dir=cache_dir, **settings).encode(paths, progress=progress)
                encodings, detected = files.encodings, files.detected if detected is None else detected
                plain[tuple(sorted(settings.items()))] = encodings
            out.append(encodings)
            names.append(f"margin {margin} {name}")
    return np.stack(out, axis=1), detected, names, int(grey.sum())


def _source(path):
    """The data set a training photo comes from: the folder of the labels.csv that lists it directly (a flat
    set such as Yale's), else the folder above its person folder (or above ``images/``)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(os.path.join(folder, "labels.csv")):
        return os.path.basename(folder)
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    return parts[-4] if parts[-3] == "images" else parts[-3]


def train_head_from_photos(photos, out_path, steps=500, margins=None, log=None, progress=None, views=VIEWS,
                           cache_dir=None, **settings):
    """Encode ``[(path, identity), ...]``, train a head, write it to ``out_path``; returns the record."""
    import json

    from facetag.vision.alignment import DEFAULT_MARGIN

    margins = margins or [DEFAULT_MARGIN]
    paths = [p for p, _ in photos]
    labels = np.array([who for _, who in photos])
    encodings, detected, view_names, grey = training_views(paths, margins, views, progress, cache_dir)
    trainer = HeadTrainer(steps=steps, **settings).fit(encodings, labels, log=log)
    np.savez(out_path, **{k: v.astype(np.float32) for k, v in trainer.head_.items()})
    counts = {who: int((labels == who).sum()) for who in np.unique(labels)}
    from facetag.io.datasets import is_grey

    sources = {}
    for path, who in photos:
        entry = sources.setdefault(_source(path), {"photos": 0, "grey": 0, "colour": 0, "people": set()})
        entry["photos"] += 1
        entry["grey" if is_grey(path) else "colour"] += 1
        entry["people"].add(who)
    record = {
        "photos": len(paths),
        "grey_photos": grey,
        "colour_photos": len(paths) - grey,
        "people": len(counts),
        "people_with_several_photos": sum(c >= 2 for c in counts.values()),
        "sources": {name: {**e, "people": len(e["people"])} for name, e in sources.items()},
        "photos_without_detected_face": int((~detected).sum()),
        "views": view_names,
        "settings": {k: "a given head" if k == "init" and isinstance(v, dict) else v
                     for k, v in vars(trainer).items() if not k.endswith("_")},
        "final_loss": float(np.mean(trainer.history_[-200:])),
    }
    with open(os.path.splitext(out_path)[0] + ".training.json", "w") as f:
        json.dump(record, f, indent=2)
    return record
