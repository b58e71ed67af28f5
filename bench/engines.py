"""`facetag tag` in-process against the local Flink cluster against the local Spark cluster (README "Run on a cluster").

    python bench/engines.py [--photos 1000] [--engines in-process flink spark] [--out report.md]

On lfw_dev (../shared/data): 100 people with >= 4 photos enrol their first 2 photos (in-process, once);
`--photos` other lfw_dev photos are then tagged into a fresh archive store by each runner. For a cluster,
`make cluster-up ENGINE=...` starts it first and a warm-up run of one photo goes through it (Spark's job
server starts its application with the first job), then:

- fixed cost: the wall time of `facetag tag` on one photo into a fresh store, the cluster already up;
- photos/s: `--photos` divided by the wall time of `facetag tag` on them into a fresh store;
- peak memory: the sum of each process's peak resident memory (VmHWM, sampled every 0.5 s) over the
  cluster's processes (JobManager, TaskManagers or master, workers and executors, job server, SDK worker
  pool and its SDK workers) during the run, started once the earlier runs' SDK workers are gone (an upper
  bound: the processes need not peak at once); in-process, the `facetag tag` process's own.

Every run must report all its photos new (the summary line), or the benchmark stops.

Each run is a fresh `facetag tag` process timed as a whole. The cluster is stopped after its runs.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time

import benchutil


def _load_cluster_script():
    """scripts/cluster.py (the local clusters' pid files and process groups), by path: bench/cluster.py is another
    module of that name."""
    path = os.path.join(benchutil.REPO, "scripts", "cluster.py")
    spec = importlib.util.spec_from_file_location("cluster_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cluster = _load_cluster_script()

from facetag.learn.evaluation import identification_split

VENV_BIN = os.path.dirname(sys.executable)
CACHED_S = 32  # a job's SDK workers outlive it by environment_cache_millis (configs/*-local.yaml: 30 s)


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def cluster_pids(engine):
    """Every live process in the process groups `make cluster-up` started (their pid files)."""
    return [pid for pid, _ in cluster.group_members(cluster.started_groups(engine))]


class PeakMemory:
    """Samples the peak resident memory of the processes ``pids()`` names until stopped; ``total_mib``."""

    def __init__(self, pids):
        self.pids = pids
        self.peaks = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while True:
            for pid in self.pids():
                hwm = vm_hwm_kib(pid)
                if hwm:
                    self.peaks[pid] = max(self.peaks.get(pid, 0), hwm)
            if self.stop.wait(0.5):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    @property
    def total_mib(self):
        return sum(self.peaks.values()) / 1024


def tag(photos, index, store, engine):
    """Wall seconds of one `facetag tag` process, and its peak memory measurement."""
    config = [] if engine == "in-process" else ["--config", os.path.join(benchutil.REPO, "configs",
                                                                         f"{engine}-local.yaml")]
    start = time.perf_counter()
    proc = subprocess.Popen([os.path.join(VENV_BIN, "facetag"), "tag", photos, "--index", index, "--out", store,
                             *config], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    with PeakMemory(lambda: [proc.pid] if engine == "in-process" else cluster_pids(engine)) as memory:
        out, err = proc.communicate()
    wall = time.perf_counter() - start
    n = len(os.listdir(photos))
    if proc.returncode or f"{n} photos listed: 0 unchanged, {n} new" not in err + out:
        raise SystemExit(f"facetag tag on {engine} failed or missed photos:\n{err[-3000:]}")
    return wall, memory


def make(target, engine):
    subprocess.run(["make", "-s", target, f"ENGINE={engine}", f"PY={sys.executable}"], cwd=benchutil.REPO,
                   check=True, stdout=subprocess.DEVNULL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--engines", nargs="+", default=["in-process", "flink", "spark"],
                        choices=["in-process", "flink", "spark"])
    parser.add_argument("--out", help="also write the report here (markdown)")
    args = parser.parse_args(argv)
    facts = benchutil.machine_facts()
    gallery, _ = identification_split(benchutil.LFW_IMAGES, people=100, strangers=0)
    others = sorted(set(benchutil.photo_paths()[0]) - {p for p, _ in gallery})
    if len(others) < args.photos + 1:
        raise SystemExit(f"needs {args.photos + 1} lfw_dev photos besides the gallery: is ../shared/data there?")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        known, photos, one = (os.path.join(work, n) for n in ("known", "photos", "one"))
        for path, who in gallery:
            os.makedirs(os.path.join(known, who), exist_ok=True)
            os.symlink(path, os.path.join(known, who, os.path.basename(path)))
        for folder, paths in ((photos, others[: args.photos]), (one, others[-1:])):
            os.makedirs(folder)
            for path in paths:
                os.symlink(path, os.path.join(folder, os.path.basename(path)))
        index = os.path.join(work, "index")
        subprocess.run([os.path.join(VENV_BIN, "facetag"), "enroll", known, "--out", index], check=True,
                       capture_output=True)
        for engine in args.engines:
            if engine != "in-process":
                make("cluster-up", engine)
            try:
                tag(one, index, os.path.join(work, f"{engine}-warm-up"), engine)
                fixed, _ = tag(one, index, os.path.join(work, f"{engine}-one"), engine)
                if engine != "in-process":
                    time.sleep(CACHED_S)  # the earlier runs' SDK workers have exited: not counted below
                wall, memory = tag(photos, index, os.path.join(work, f"{engine}-store"), engine)
            finally:
                if engine != "in-process":
                    make("cluster-down", engine)
            rows.append((engine, args.photos / wall, wall, fixed, memory.total_mib, len(memory.peaks)))
            print(f"{engine}: {rows[-1]}", file=sys.stderr)
    lines = ["# facetag tag: in-process against local Flink and Spark clusters (bench/engines.py)", "", *facts,
             f"- {args.photos} lfw_dev photos, 100 people enrolled; Flink 1.19.0 (JobManager + 2 TaskManagers of one "
             "slot), Spark 3.5.0 (master + 2 workers of one core), Beam 2.62.0 job servers, Python SDK 2.77.0 "
             "(configs/flink-local.yaml, spark-local.yaml)", "",
             "| runner | photos/s | wall, s | fixed cost per run, s (1 photo, cluster up) | peak memory, MiB "
             "(processes) |", "|---|---|---|---|---|"]
    for engine, rate, wall, fixed, mib, processes in rows:
        what = "the facetag process" if engine == "in-process" else "JVMs + SDK workers"
        lines.append(f"| {engine} | {rate:.2f} | {wall:.0f} | {fixed:.0f} | {mib:,.0f} ({processes}: {what}) |")
    benchutil.write_report(lines, args.out)


if __name__ == "__main__":
    main()
