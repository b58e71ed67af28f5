"""Pipeline options shared by the jobs: runner defaults, config files, the summary line."""

import argparse
import logging

import yaml
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from facetag.alignment import DEFAULT_MARGIN
from facetag.detection import DEFAULT_MIN_SCORE
from facetag.errors import FaceTagError
from facetag.models import DEFAULT_MODEL, available_models

#: Beam's in-process runner. Named explicitly because Beam 2.77's DirectRunner
#: first tries to download and start the Prism runner, which cannot work offline.
DEFAULT_RUNNER = "FnApiRunner"


def add_model_arguments(parser):
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=available_models(),
                        help=f"encoding model (default {DEFAULT_MODEL})")
    parser.add_argument("--min_score", type=float, default=DEFAULT_MIN_SCORE, help="detector confidence a face needs")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="crop margin, fraction of the box")
    parser.add_argument("--max_batch_size", type=int, default=32, help="largest batch of crops per encoder call")


def add_config_argument(parser):
    parser.add_argument("--config", help="YAML file of pipeline options (configs/*.yaml); command-line options win")


def config_args(path):
    """A YAML mapping of pipeline options -> ``--key=value`` arguments."""
    if not path:
        return []
    try:
        with open(path) as f:
            settings = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise FaceTagError(f"cannot read config {path}: {e}") from e
    if not isinstance(settings, dict):
        raise FaceTagError(f"config {path} must be a mapping of pipeline option: value")
    args = []
    for key, value in settings.items():
        if isinstance(value, bool):
            args += [f"--{key}"] if value else []
        elif isinstance(value, list):
            args += [f"--{key}={v}" for v in value]
        else:
            args.append(f"--{key}={value}")
    return args


def pipeline_options(config, pipeline_args):
    """PipelineOptions from the config file then the command line, with the offline-safe default runner."""
    args = config_args(config) + list(pipeline_args)
    options = PipelineOptions(args)
    if not options.get_all_options()["runner"]:
        options = PipelineOptions(args + [f"--runner={DEFAULT_RUNNER}"])
    return options


def new_parser(description):
    return argparse.ArgumentParser(description=description)


def counters(result):
    """``{name: value}`` of the facetag counters of a finished run."""
    try:
        found = result.metrics().query(MetricsFilter().with_namespace("facetag"))["counters"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics back
        return {}
    totals = {}
    for c in found:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + (value or 0)
    return totals


def summary_line(result):
    c = counters(result)
    if not c:
        return "facetag: done (this runner reported no counters; see the output files)"
    line = (f"facetag: {c.get('images_read', 0)} images read: {c.get('images_with_faces', 0)} with faces "
            f"({c.get('faces_found', 0)} faces), {c.get('images_without_face', 0)} without a face, "
            f"{c.get('images_failed', 0)} failed")
    if "faces_identified" in c or "faces_unknown" in c:
        line += f"; {c.get('faces_identified', 0)} faces identified, {c.get('faces_unknown', 0)} unknown"
    logging.getLogger("facetag").info(line)
    return line
