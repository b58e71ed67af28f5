"""Verification accuracy on LFW-format pairs: k-fold accuracy, ROC, TAR at fixed FAR."""

import os
from dataclasses import dataclass

import numpy as np

from facetag.errors import FaceTagError
from facetag.io.datasets import is_grey


@dataclass(frozen=True)
class Pair:
    a: str  # image path
    b: str
    same: bool
    fold: int


def lfw_image(images_dir, name, number):
    return os.path.join(images_dir, name, f"{name}_{int(number):04d}.jpg")


def read_pairs(pairs_file, images_dir):
    """Parse LFW's pairs format: a header 'folds<TAB>n', then per fold n same and n different lines."""
    with open(pairs_file) as f:
        lines = [line.split() for line in f if line.strip()]
    try:
        folds, per_fold = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise FaceTagError(f"{pairs_file}: the first line must be 'folds<TAB>pairs-per-fold'") from None
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise FaceTagError(f"{pairs_file}: header promises {folds}x2x{per_fold} pairs, found {len(body)} lines")
    pairs = []
    for i, parts in enumerate(body):
        fold = i // (2 * per_fold)
        if len(parts) == 3:
            pairs.append(Pair(lfw_image(images_dir, parts[0], parts[1]), lfw_image(images_dir, parts[0], parts[2]), True, fold))
        elif len(parts) == 4:
            pairs.append(Pair(lfw_image(images_dir, parts[0], parts[1]), lfw_image(images_dir, parts[2], parts[3]), False, fold))
        else:
            raise FaceTagError(f"{pairs_file}: line {i + 2} is neither 'name i j' nor 'name i name j'")
    return pairs


def accuracy_at(distances, same, threshold):
    return float(np.mean((distances <= threshold) == same))


def best_threshold(distances, same):
    """The threshold with the highest accuracy; ties resolved to the middle of the best run."""
    distances, same = np.asarray(distances), np.asarray(same, bool)
    order = np.argsort(distances, kind="stable")
    ranked, same_ranked = distances[order], same[order]
    candidates = np.unique(ranked)
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[:-1] + candidates[1:]) / 2, [candidates[-1] + 1e-6]])
    # Pairs accepted below each mid: none, then every pair up to each distinct distance.
    accepted = np.concatenate([[0], np.searchsorted(ranked, candidates, side="right")])
    same_accepted = np.concatenate([[0], np.cumsum(same_ranked)])[accepted]
    different_rejected = (~same).sum() - (accepted - same_accepted)
    accs = same_accepted + different_rejected  # correct answers at each mid
    best = np.flatnonzero(accs == accs.max())
    return float(mids[best[len(best) // 2]])


def kfold_accuracy(distances, same, folds):
    """Accuracy per fold, each with the threshold chosen on the other folds."""
    distances, same, folds = map(np.asarray, (distances, same, folds))
    scores, thresholds = [], []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        t = best_threshold(distances[train], same[train])
        thresholds.append(t)
        scores.append(accuracy_at(distances[test], same[test], t))
    return np.array(scores), np.array(thresholds)


def roc(distances, same):
    """False-accept and true-accept rates as the threshold sweeps over the distances."""
    order = np.argsort(distances, kind="stable")
    s = np.asarray(same)[order]
    tar = np.concatenate([[0.0], np.cumsum(s) / max(s.sum(), 1)])
    far = np.concatenate([[0.0], np.cumsum(~s) / max((~s).sum(), 1)])
    thresholds = np.concatenate([[-np.inf], np.asarray(distances)[order]])
    return far, tar, thresholds


def auc(far, tar):
    return float(np.trapezoid(tar, far))


def tar_at_far(far, tar, target):
    """The best true-accept rate with the false-accept rate at or below ``target``."""
    ok = far <= target
    return float(tar[ok].max()) if ok.any() else 0.0


def threshold_at_far(distances, same, target):
    """The largest threshold whose false-accept rate is at or below ``target``."""
    far, _, thresholds = roc(distances, same)
    ok = np.flatnonzero(far <= target)
    return float(thresholds[ok[-1]])


def verification_scores(distances, same, folds):
    """k-fold accuracy (each fold's threshold from the others), ROC AUC and TAR at FAR 1e-3 / 1e-2."""
    accuracies, fold_thresholds = kfold_accuracy(distances, same, folds)
    far, tar, _ = roc(np.where(np.isinf(distances), 1e9, distances), same)
    return {
        "accuracy_mean": float(accuracies.mean()),
        "accuracy_std": float(accuracies.std()),
        "fold_thresholds": fold_thresholds.round(4).tolist(),
        "roc_auc": auc(far, tar),
        "tar_at_far_1e-3": tar_at_far(far, tar, 1e-3),
        "tar_at_far_1e-2": tar_at_far(far, tar, 1e-2),
        "_roc": (far, tar),
    }


def evaluate_pairs(pairs, model, margin, on_miss="centre", progress=None, cache_dir=None, **encoder_options):
    """Verification report of ``model`` (a FaceModel) on LFW-format ``pairs``.

    Every photo is detected and encoded (cached, see facetag.learn.filecache). A
    photo where the detector finds no face is handled by ``on_miss``:
    ``"centre"`` encodes the centre of the photo (the faces of LFW-style
    crops are centred), ``"fail"`` counts each pair it is in as answered
    "different". Misses are always counted in the report, never dropped.
    """
    from facetag.learn.filecache import FileEncoder

    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FaceTagError(f"{len(missing)} photos named by the pairs are missing, e.g. {missing[0]}")
    index = {p: i for i, p in enumerate(paths)}
    encoder = FileEncoder(margin=margin, fallback="centre" if on_miss == "centre" else "none", cache_dir=cache_dir,
                          precision=model.backbone.precision, **encoder_options)
    files = encoder.model_encodings(model, paths, progress=progress)
    encodings = files.encodings
    ia = np.array([index[p.a] for p in pairs])
    ib = np.array([index[p.b] for p in pairs])
    distances = np.linalg.norm(encodings[ia] - encodings[ib], axis=1)
    pair_missed = ~(files.detected[ia] & files.detected[ib])
    if on_miss == "fail":
        distances[pair_missed] = np.inf
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    scores = verification_scores(distances, same, folds)
    grey = np.array([is_grey(p) for p in paths], bool)
    return {
        "model": model.name,
        "model_id": model.model_id,
        "pairs": len(pairs),
        "photos": len(paths),
        "folds": int(len(np.unique(folds))),
        **scores,
        "best_threshold": best_threshold(distances, same),
        "threshold_at_far_1e-3": threshold_at_far(distances, same, 1e-3),
        "threshold_at_far_1e-2": threshold_at_far(distances, same, 1e-2),
        "photos_without_face": int((~files.detected).sum()),
        "pairs_with_a_missed_face": int(pair_missed.sum()),
        "on_miss": on_miss,
        "seconds_per_photo": files.seconds_per_image,
        "photos_computed": files.computed,
        "by_colour": colour_split(distances, same, folds, scores["fold_thresholds"], grey[ia], grey[ib]),
        "_distances": distances,
    }


def colour_split(distances, same, folds, fold_thresholds, grey_a, grey_b):
    """Scores of the colour pairs, the grey pairs and the mixed ones, when a pairs file has more than one kind.

    Each pair keeps the threshold its fold got from the other folds (all kinds together), so the
    kinds' accuracies add up to the overall one. Returns {} for a pairs file of one kind.
    """
    kinds = np.where(grey_a & grey_b, "grey", np.where(~grey_a & ~grey_b, "colour", "mixed"))
    if len(np.unique(kinds)) < 2:
        return {}
    thresholds = np.asarray(fold_thresholds)[np.searchsorted(np.unique(folds), folds)]
    right = (distances <= thresholds) == same
    split = {}
    for kind in ("colour", "grey", "mixed"):
        mask = kinds == kind
        if mask.any():
            far, tar, _ = roc(np.where(np.isinf(distances[mask]), 1e9, distances[mask]), same[mask])
            split[kind] = {"pairs": int(mask.sum()), "same_pairs": int(same[mask].sum()), "accuracy": float(right[mask].mean()),
                           "roc_auc": auc(far, tar), "tar_at_far_1e-3": tar_at_far(far, tar, 1e-3)}
    return split


def plot_roc(report, path):
    """Write the ROC curve (log false-accept rate) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar = report["_roc"]
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.plot(np.maximum(far, 1e-4), tar, label=f"{report['model']} (AUC {report['roc_auc']:.4f})")
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"Verification ROC, {report['pairs']} pairs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)  # make lfw-eval writes into out/
    fig.savefig(path)
    plt.close(fig)


def identification_split(images_dir, min_photos=4, enrolled_per_person=2, strangers=300, people=None):
    """The open-set identification protocol on a ``Name/photo`` folder such as lfw_dev.

    People with at least ``min_photos`` photos are known: their first
    ``enrolled_per_person`` photos (sorted by name) form the gallery and the
    rest are probes. ``strangers`` one-photo people (the first, sorted) are
    probes that should come out ``unknown``. ``people`` keeps only the first
    that many known people (for quick runs). Returns ``(gallery, probes)``,
    lists of ``(path, identity)``; a stranger's identity is None.
    """
    names = sorted(os.listdir(images_dir))
    photos = {n: sorted(os.listdir(os.path.join(images_dir, n))) for n in names}
    known = [n for n in names if len(photos[n]) >= min_photos][:people]
    gallery, probes = [], []
    for name in known:
        paths = [os.path.join(images_dir, name, f) for f in photos[name]]
        gallery += [(p, name) for p in paths[:enrolled_per_person]]
        probes += [(p, name) for p in paths[enrolled_per_person:]]
    singles = [n for n in names if len(photos[n]) == 1][:strangers]
    probes += [(os.path.join(images_dir, n, photos[n][0]), None) for n in singles]
    return gallery, probes


def score_identification(probes, answers, threshold):
    """Open-set scores at ``threshold``. ``answers``: ``{path: (nearest identity, distance)}`` per probe with a face.

    A known person's probe is identified when its nearest identity is right
    and within the threshold; a stranger is rejected when its nearest
    distance is beyond it. Probes without a detected face are counted apart
    (and count as not identified).
    """
    known = [(p, who) for p, who in probes if who is not None]
    strangers = [p for p, who in probes if who is None]
    rank1 = sum(answers.get(p, (None, 0.0))[0] == who for p, who in known)
    identified = sum(p in answers and answers[p][0] == who and answers[p][1] <= threshold for p, who in known)
    rejected = sum(answers[p][1] > threshold for p in strangers if p in answers)
    return {
        "threshold": threshold,
        "known_probes": len(known),
        "known_without_face": sum(p not in answers for p, _ in known),
        "rank1_accuracy": rank1 / max(len(known), 1),
        "identified_at_threshold": identified / max(len(known), 1),
        "strangers": len(strangers),
        "strangers_without_face": sum(p not in answers for p in strangers),
        "strangers_rejected": rejected / max(len(strangers), 1),
    }
