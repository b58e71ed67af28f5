"""What the command line prints: text for people, JSON for machines, progress on a terminal."""

import json
import sys


class UsageError(Exception):
    """The command line asks for something inconsistent: argparse prints it with the usage (exit 2)."""


def face_json(face):
    return {"box": list(face.box), "score": round(face.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in face.landmarks]}


def emit(args, data, text_lines):
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(text_lines))


def progress(label):
    """A progress line on stderr, drawn only on a terminal (a log file gets no carriage-return clutter)."""
    def show(done, total):
        if sys.stderr.isatty():
            print(f"\r{label}: {done}/{total} photos", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return show


def table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
