"""Held-out colour verification sets: colour_faces validation people and tight face crops.

    python scripts/colour_sets.py [--data ../shared/data] [--out out/colour]

Writes, under --out (not committed; rebuilt the same from the shared data):

- ``split.json``: colour_faces people split into training and validation people
  (every third person, sorted by name, is a validation person; the 12 people of
  lfw_dev/pairs.txt never train), and the selection people: every fourth training
  person, whom scripts/head_experiments.py leaves out while it compares heads;
- ``colour_faces_select.pairs.txt`` and ``tight_colour_faces_select/images``: pairs
  (5 folds of 150 same + 150 different) and tight crops of the selection people;
- ``colour_faces_val.pairs.txt``: LFW-format pairs (5 folds of 300 same + 300
  different, each fold its own people) over the validation people's photos;
- ``tight_colour_faces/images``: each validation photo's main face as a tight
  112x112 crop (the detected box, no margin), as other tools export faces;
- ``tight_lfw_colour/images``: the same for the photos of lfw_dev_colour's pairs, at 96x96.

The tight crops use the pairs files of the photos they come from.
"""

import argparse
import json
import os
import random

from PIL import Image

from facetag.io.datasets import pair_people, read_labelled
from facetag.io.images import load_image
from facetag.learn.evaluation import read_pairs
from facetag.learn.filecache import FileEncoder
from facetag.vision.alignment import centre_box, crop_face

FOLDS, PER_FOLD = 5, 300


def split_people(data):
    people = sorted({who for _, who in read_labelled(f"{data}/colour_faces/labels.csv")})
    lfw_pairs = pair_people(f"{data}/lfw_dev/pairs.txt")
    validation = [p for i, p in enumerate(people) if i % 3 == 0]
    training = [p for i, p in enumerate(people) if i % 3 and p not in lfw_pairs]
    return training, validation


def selection_people(training):
    return training[::4]


def write_pairs(photos, people, path, seed=0, per_fold=PER_FOLD):
    """LFW-format pairs over ``photos`` ({person: [numbers]}); folds never share a person."""
    rng = random.Random(seed)
    people = sorted(people)
    rng.shuffle(people)
    lines = [f"{FOLDS}\t{per_fold}"]
    for fold in range(FOLDS):
        group = people[fold::FOLDS]
        same = sorted({(p, *sorted(rng.sample(photos[p], 2))) for p in group for _ in range(40) if len(photos[p]) >= 2})
        if len(same) < per_fold:
            raise SystemExit(f"fold {fold}: only {len(same)} same pairs")
        lines += [f"{p}\t{a}\t{b}" for p, a, b in rng.sample(same, per_fold)]
        different = set()
        while len(different) < per_fold:
            a, b = sorted(rng.sample(group, 2))
            different.add((a, rng.choice(photos[a]), b, rng.choice(photos[b])))
        lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in sorted(different)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_tight(paths, source_dir, out_dir, size):
    """The main face of each photo cut at its detected box (no margin), resized to size x size."""
    encoder = FileEncoder(margin=0.25)
    encoder.encode(paths)  # detects and caches the main faces
    faces = encoder.main_faces(paths)
    for path in paths:
        target = os.path.join(out_dir, os.path.relpath(path, source_dir))
        if os.path.exists(target):
            continue
        image = load_image(path)
        box = faces[path][0] if faces[path] else centre_box(image.shape)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Image.fromarray(crop_face(image, box, margin=0.0, size=size)).save(target, quality=95)
    return sum(f is None for f in faces.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", default="out/colour")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    training, validation = split_people(args.data)
    selection = selection_people(training)
    with open(f"{args.out}/split.json", "w") as f:
        json.dump({"training": training, "selection": selection, "validation": validation}, f, indent=1)
    images = f"{args.data}/colour_faces/images"
    photos = {p: sorted(int(n[-8:-4]) for n in os.listdir(f"{images}/{p}")) for p in training + validation}
    select_file = f"{args.out}/colour_faces_select.pairs.txt"
    write_pairs(photos, selection, select_file, per_fold=150)
    select_paths = sorted({q for pair in read_pairs(select_file, images) for q in (pair.a, pair.b)})
    missed = write_tight(select_paths, images, f"{args.out}/tight_colour_faces_select/images", 112)
    print(f"colour_faces: {len(selection)} selection people, {len(select_paths)} photos in their pairs, "
          f"{missed} without a detected face")
    pairs_file = f"{args.out}/colour_faces_val.pairs.txt"
    write_pairs(photos, validation, pairs_file)
    val_paths = sorted({q for pair in read_pairs(pairs_file, images) for q in (pair.a, pair.b)})
    missed = write_tight(val_paths, images, f"{args.out}/tight_colour_faces/images", 112)
    print(f"colour_faces: {len(training)} training people, {len(validation)} validation people, "
          f"{len(val_paths)} photos in the pairs, {missed} without a detected face (centre used for the tight crop)")
    lfw = f"{args.data}/lfw_dev_colour"
    lfw_paths = sorted({q for pair in read_pairs(f"{lfw}/pairs.txt", f"{lfw}/images") for q in (pair.a, pair.b)})
    missed = write_tight(lfw_paths, f"{lfw}/images", f"{args.out}/tight_lfw_colour/images", 96)
    print(f"lfw_dev_colour: {len(lfw_paths)} photos in the pairs, {missed} without a detected face")


if __name__ == "__main__":
    main()
