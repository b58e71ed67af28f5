"""Pipeline options shared by the jobs: runner defaults, config files, the summary line."""

import argparse
import logging
import os

import yaml
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.runners.runner import create_runner

from facetag.errors import FaceTagError
from facetag.io.limits import MAX_ASPECT, MAX_FILE_BYTES, MAX_PIXELS, TIME_BUDGET_S, Limits
from facetag.vision.alignment import DEFAULT_MARGIN
from facetag.vision.detection import DEFAULT_MIN_SCORE
from facetag.vision.models import DEFAULT_MODEL, STORE_MODEL_HELP, available_models

#: Beam's in-process runner. Named explicitly because Beam 2.77's DirectRunner
#: first tries to download and start the Prism runner, which cannot work offline.
DEFAULT_RUNNER = "FnApiRunner"
#: Runners whose workers are this process or its children, which see its environment (and its disk).
IN_PROCESS_RUNNERS = {"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"}
#: Where the object store is, passed to the workers of a runner that is not in-process as Beam's S3 options
#: when not given: the workers of a cluster do not share the submitting process's environment. (In-process
#: workers read it from the environment, as this process does.)
FORWARDED_S3_SETTINGS = {"s3_endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
                         "s3_region_name": ("AWS_REGION", "AWS_DEFAULT_REGION")}
#: Beam's S3 options that are secrets. Beam's SDK workers write their pipeline options to the runner's logs
#: when they start ("Pipeline_options: ..."), and Flink's UI shows them: on a runner with remote workers
#: facetag refuses them, and the workers take credentials from their own environment.
SECRET_S3_OPTIONS = ("s3_secret_access_key", "s3_session_token")


def add_model_arguments(parser, store_default=False):
    """The encoder's options; ``store_default``: --model defaults to None, for the job to take the store's."""
    parser.add_argument("--model", default=None if store_default else DEFAULT_MODEL, choices=available_models(),
                        help=STORE_MODEL_HELP if store_default else f"encoding model (default {DEFAULT_MODEL})")
    parser.add_argument("--min_score", type=float, default=DEFAULT_MIN_SCORE, help="detector confidence a face needs")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="crop margin, fraction of the box")
    parser.add_argument("--max_batch_size", type=int, default=32, help="largest batch of crops per encoder call")
    parser.add_argument("--model_threads", "--tf_threads", type=int, default=0,
                        help="threads of the encoder network in each worker process (default: all cores, or cores / "
                             "workers with --direct_num_workers; the detector searches one photo per detection "
                             "thread, one core each; --tf_threads is the earlier name)")
    parser.add_argument("--max_file_mb", type=float, default=MAX_FILE_BYTES / 1e6,
                        help=f"largest file read, MB (default {MAX_FILE_BYTES / 1e6:g}; facetag.io.limits)")
    parser.add_argument("--max_megapixels", type=float, default=MAX_PIXELS / 1e6,
                        help=f"largest image decoded, megapixels (default {MAX_PIXELS / 1e6:g})")
    parser.add_argument("--max_aspect", type=float, default=MAX_ASPECT,
                        help=f"longest side over shortest beyond which an image is refused (default {MAX_ASPECT:g})")
    parser.add_argument("--photo_time_budget", type=float, default=TIME_BUDGET_S,
                        help=f"seconds one photo may take to decode and search (default {TIME_BUDGET_S:g})")


def limits_from(args):
    """The facetag.io.limits.Limits that the job options above ask for."""
    return Limits(max_file_bytes=round(args.max_file_mb * 1e6), max_pixels=round(args.max_megapixels * 1e6),
                  max_aspect=args.max_aspect, time_budget_s=args.photo_time_budget)


def encoder_settings(args, options):
    """EncodePhotos' settings from the arguments of add_model_arguments."""
    return {"model_name": args.model, "min_score": args.min_score, "margin": args.margin,
            "max_batch_size": args.max_batch_size, "model_threads": model_threads(options, args.model_threads),
            "limits": limits_from(args)}


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
    """PipelineOptions from the config file then the command line, with the offline-safe default runner, and
    the object store's endpoint and region from this process's environment (FORWARDED_S3_SETTINGS)."""
    args = config_args(config) + list(pipeline_args)
    given = PipelineOptions(args).get_all_options()
    runner = given["runner"]
    if not runner:
        args.append(f"--runner={DEFAULT_RUNNER}")
    else:
        try:
            create_runner(runner)
        except ValueError as e:  # Beam's message lists the runners it knows
            raise FaceTagError(f"--runner {runner}: {e}") from None
    if runner and runner.rsplit(".", 1)[-1] not in IN_PROCESS_RUNNERS:  # workers elsewhere
        secrets = [f"--{name}" for name in SECRET_S3_OPTIONS if given.get(name)]
        if secrets:
            raise FaceTagError(
                f"{', '.join(secrets)}: Beam's workers write their pipeline options to the runner's logs, so a secret "
                f"given as an option ends up there; give the workers of --runner {runner} their credentials in "
                "their own environment instead (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, or an "
                "instance role; README 'Run on a cluster')")
        for option, variables in FORWARDED_S3_SETTINGS.items():
            value = next((os.environ[v] for v in variables if os.environ.get(v)), None)
            if value and not given.get(option):
                args.append(f"--{option}={value}")
    return PipelineOptions(args)


def model_threads(options, requested=0):
    """Threads of the encoder's network (LiteRT interpreter) in each worker process.

    One process alone uses every core. Several local worker processes share
    the cores instead: each network sized to the whole machine would
    oversubscribe it (measured with TensorFlow's pools, before facetag ran on
    LiteRT: 2 workers at 1 thread each tagged 1.3x faster than 1 worker, 2
    workers at full pools 0.5x).
    """
    if requested:
        return requested
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode == "multi_processing":
        workers = direct.direct_num_workers or os.cpu_count()
        if workers > 1:
            return max(1, os.cpu_count() // workers)
    return 0


def limit_model_threads(threads):
    """Threads for this process's encoder network; call before it loads (0: every core)."""
    if threads:
        from facetag.vision.runtime import set_threads

        set_threads(threads)


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
