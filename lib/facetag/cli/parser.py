"""The command line's grammar: every subcommand, its arguments and its help."""

import argparse

from facetag.archive.maintenance import RETAIN_HOURS
from facetag.cli import commands
from facetag.pipeline.progress import add_progress_argument
from facetag.vision.alignment import DEFAULT_MARGIN
from facetag.vision.models import DEFAULT_MODEL, STORE_MODEL_HELP, available_models

BEAM_DESCRIPTION = "Extra options go to Beam: --runner, --direct_num_workers, --config FILE, ..."


def _shared_options():
    """Parent parsers of the options several subcommands take, each declared once."""
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", default=DEFAULT_MODEL, choices=available_models(),
                       help=f"encoding model (default {DEFAULT_MODEL})")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON for machines instead of text")
    pairs = argparse.ArgumentParser(add_help=False)
    pairs.add_argument("--pairs", required=True, help="pairs file: 'folds<TAB>n' then same/different lines")
    pairs.add_argument("--images", required=True, help="folder of Name/Name_NNNN.jpg photos")
    pairs.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="crop margin (fraction of the box)")
    pairs.add_argument("--on-miss", choices=["centre", "fail"], default="centre",
                       help="a photo with no detected face: encode its centre, or count its pairs as failures")
    return model, as_json, pairs


def build_parser():
    parser = argparse.ArgumentParser(prog="facetag", description="Find, verify and identify faces in photos.")
    sub = parser.add_subparsers(dest="command", required=True)
    model, as_json, pairs = _shared_options()

    p = sub.add_parser("faces", parents=[model, as_json], help="list the faces in a photo")
    p.add_argument("photo")
    p.set_defaults(func=commands.cmd_faces)

    p = sub.add_parser("verify", parents=[model, as_json],
                       help="are two photos the same person? or: is this photo the claimed person?")
    p.add_argument("photo_a", metavar="PHOTO")
    p.add_argument("photo_b", metavar="PHOTO_B", nargs="?")
    p.add_argument("--claim", metavar="NAME", help="the person the photo claims to be (needs --gallery)")
    p.add_argument("--gallery", metavar="DIR", help="folder of Name/*.jpg enrolled photos")
    p.add_argument("--threshold", type=float, help="largest distance still the same person (default: the model's)")
    p.set_defaults(func=commands.cmd_verify)

    p = sub.add_parser("identify", parents=[model, as_json], help="name every face in a photo from a gallery, or 'unknown'")
    p.add_argument("photo")
    p.add_argument("--gallery", metavar="DIR", required=True, help="folder of Name/*.jpg enrolled photos")
    p.add_argument("--threshold", type=float, help="largest distance still a match (default: the model's)")
    p.set_defaults(func=commands.cmd_identify)

    p = sub.add_parser("evaluate", parents=[pairs, model, as_json], help="verification accuracy on LFW-format pairs")
    p.add_argument("--roc", metavar="PNG", help="write the ROC curve to this PNG file")
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("calibrate", parents=[pairs, model, as_json],
                       help="the threshold for a target false-accept rate")
    p.add_argument("--far", type=float, default=1e-3, help="target false-accept rate (default 1e-3)")
    p.set_defaults(func=commands.cmd_calibrate)

    p = sub.add_parser("enroll", parents=[model], description=BEAM_DESCRIPTION,
                       help="encode a gallery of known people and build its index (a Beam job)")
    p.add_argument("gallery", help="folder of Name/photo files, or a CSV of uri,identity")
    p.add_argument("--out", required=True, help="index folder to write")
    p.add_argument("--store", help="an archive store whose named faces (facetag name) join the gallery too")
    p.set_defaults(func=commands.cmd_enroll, beam=True)

    p = sub.add_parser("tag", description=BEAM_DESCRIPTION,
                       help="tag every face in a photo archive against an index (a Beam job); re-runs do only the "
                            "new work")
    p.add_argument("photos", help="a folder (every file below it) or a glob, local or gs://")
    p.add_argument("--index", required=True, help="index folder written by 'facetag enroll'")
    p.add_argument("--out", required=True, help="the archive store: a folder of Delta tables, created by the "
                   "first run and updated by the next ones")
    p.add_argument("--model", choices=available_models(), help=STORE_MODEL_HELP)
    p.add_argument("--show", type=int, default=50, help="result rows to print (default 50)")
    add_progress_argument(p)
    p.add_argument("--json", action="store_true", help="print the run's summary as one JSON object")
    p.set_defaults(func=commands.cmd_tag, beam=True)

    p = sub.add_parser("reencode", description=BEAM_DESCRIPTION,
                       help="move an archive store to another encoding model, from its photos, in one run (a Beam "
                            "job; README, 'Changing a store's model')")
    p.add_argument("store", help="an archive store (facetag tag --out)")
    p.add_argument("--model", required=True, choices=available_models(), help="the model to move it to")
    p.add_argument("--index", required=True, help="a gallery enrolled with that model (facetag enroll --model)")
    add_progress_argument(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=commands.cmd_reencode, beam=True)

    p = sub.add_parser("cluster", description=BEAM_DESCRIPTION,
                       help="group the archive's unknown faces into people (a Beam job)")
    p.add_argument("store", help="an archive store (facetag tag --out)")
    p.add_argument("--threshold", type=float,
                   help="largest distance between two faces linked as one person (default: the model's)")
    p.add_argument("--min-quality", type=float, metavar="Q",
                   help="leave faces of a quality (0-1) under Q out of clusters, listed apart in the review page "
                        "(default 0: none; see README, 'Face quality')")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=commands.cmd_cluster, beam=True)

    p = sub.add_parser("name", parents=[as_json],
                       help="name a cluster of unknown faces, or say who one face is (or is not)",
                       description="Names are kept in the store (table labels) and override the matcher in every "
                       "later run; named faces join the gallery index from their stored encodings.")
    p.add_argument("store", help="an archive store (facetag tag --out)")
    p.add_argument("--cluster", type=int, metavar="ID", help="a cluster id from clusters.csv (facetag cluster)")
    p.add_argument("--face", metavar="FACE_ID", help="one face (its face_id)")
    p.add_argument("--as", dest="name", metavar="NAME", help="who the faces are")
    p.add_argument("--not", dest="not_name", metavar="NAME", help="who the face is not (with --face)")
    p.add_argument("--from", dest="from_csv", metavar="CSV", help="many clusters at once: cluster,name rows")
    p.add_argument("--index", help="the gallery to enrol named faces in (default: the one the store's last "
                   "'facetag tag' used)")
    p.set_defaults(func=commands.cmd_name)

    p = sub.add_parser("review", parents=[as_json],
                       help="review the faces of an archive store: a static page (--out), or a local app that "
                            "names them (--serve)")
    p.add_argument("store", help="archive store written by 'facetag tag'")
    p.add_argument("--out", help="folder for the page and its thumbnails (re-runs add only new ones); with --serve, "
                                 "where the thumbnails are kept (default: facetag's cache folder)")
    p.add_argument("--serve", action="store_true",
                   help="serve the page on 127.0.0.1 to name, merge and hide faces in the browser (Ctrl-C stops)")
    p.add_argument("--port", type=int, default=0, help="with --serve: the port (default: a free one)")
    p.add_argument("--threshold", type=float,
                   help="distance the faces are sorted against, most doubtful first (default: the model's 1:K one)")
    p.set_defaults(func=commands.cmd_review)

    p = sub.add_parser("xmp", parents=[as_json],
                       help="write the face tags as XMP (sidecars, or --embed) for photo tools",
                       description="MWG face regions and People| keywords, merged into existing XMP; "
                                   "photos are never changed unless --embed is given.")
    p.add_argument("store", help="archive store written by 'facetag tag'")
    p.add_argument("--out", metavar="DIR", help="write sidecars under DIR (mirroring each photo's full path) "
                                               "instead of beside the photos, for a read-only archive")
    p.add_argument("--embed", action="store_true", help="write into the JPEG and TIFF files themselves")
    p.add_argument("--unknown-regions", action="store_true", help="also write unknown faces' regions, unnamed")
    p.set_defaults(func=commands.cmd_xmp)

    p = sub.add_parser("maintain", parents=[as_json],
                       help="compact, checkpoint and vacuum an archive store's tables (every run does it too)")
    p.add_argument("store", help="archive store written by 'facetag tag'")
    p.add_argument("--retain-hours", type=int, default=RETAIN_HOURS,
                   help=f"keep files that later versions replaced for this long (default {RETAIN_HOURS:g}: "
                        "a week, Delta's default), for readers of older versions and time travel")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    p.set_defaults(func=commands.cmd_maintain)

    p = sub.add_parser("train", parents=[as_json], help="train the 128-d head with the triplet loss")
    p.add_argument("--data", action="append", required=True,
                   help="a folder of Name/photo files or a CSV of file,identity (repeatable)")
    p.add_argument("--exclude-pairs", action="append", default=[], metavar="PAIRS",
                   help="leave out every person named in this pairs file (repeatable)")
    p.add_argument("--out", required=True, help="where to write the head's weights (.npz)")
    p.add_argument("--steps", type=int, default=500, help="training steps (default 500, see weights/README.md)")
    p.set_defaults(func=commands.cmd_train)
    return parser
