"""Local Flink and Spark clusters for facetag's Beam jobs: fetch the engines once, start, stop.

    python scripts/cluster.py fetch flink|spark   # Maven Central -> $FACETAG_CACHE/engines, checksums checked
    python scripts/cluster.py up flink|spark      # start everything, wait until ready
    python scripts/cluster.py up flink|spark --isolated   # the same, workers sharing no disk with this machine
    python scripts/cluster.py down flink|spark    # stop exactly what 'up' started (safe to repeat)
    python scripts/cluster.py status flink|spark

flink: a JobManager and two TaskManagers (one JVM each; REST on 127.0.0.1:8081), Beam's Flink job server
       (127.0.0.1:8099) pointed at the JobManager, and a Python SDK worker pool (127.0.0.1:50000).
spark: a standalone master (127.0.0.1:7077, web UI 127.0.0.1:8080) and two workers (one JVM each), Beam's Spark
       job server (127.0.0.1:8199) driving it, and a Python SDK worker pool (127.0.0.1:50001).
       The job server keeps one Spark application for all jobs; its UI (127.0.0.1:4040) lists their Spark jobs.
configs/flink-local.yaml and configs/spark-local.yaml point the jobs at them. Everything listens on 127.0.0.1:
every JVM runs with scripts/engines/loopback_bind.c preloaded (built once with cc), because Beam's Java servers
listen on every interface whatever host they are given. Pid files and logs: out/cluster/ENGINE/. Nothing is
downloaded by 'up'.

--isolated starts the TaskManagers / Spark workers (with their executors) and the SDK worker pool (with its SDK
workers) each in a mount namespace of its own, as machines that share no disk with the one that submits jobs:
each sees its own folder out/cluster/ENGINE/NAME-disk as /tmp, and neither this machine's /tmp and /var/tmp
nor the checkout's out/ (see `isolated`). The network is shared: 127.0.0.1 is this machine for them too.
"""

import argparse
import glob
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POMS = os.path.join(REPO, "scripts", "engines")
CHECKSUMS = os.path.join(POMS, "SHA256SUMS")
HOST = "127.0.0.1"

BEAM_JAVA = "2.62.0"  # newest Beam release whose Flink and Spark runners Maven Central serves whole (see README)
FLINK = "1.19.0"      # the Flink beam-runners-flink-1.19:2.62.0 is built against
SPARK = "3.5.0"       # the Spark Beam 2.62's Spark 3 job server is built with

# Flink's and Spark's own Java 17 options (flink-dist's config.yaml, Spark's JavaModuleOptions), merged.
JAVA17_OPENS = [f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in (
    "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.text",
    "java.time", "java.util", "java.util.concurrent", "java.util.concurrent.atomic", "java.util.concurrent.locks",
    "sun.nio.ch", "sun.nio.cs", "sun.security.action", "sun.util.calendar")] + [
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED", "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED", "-Djdk.reflect.useDirectMethodHandle=false",
    "-XX:+IgnoreUnrecognizedVMOptions"]

ENGINES = {
    "flink": {"job_port": 8099, "pool_port": 50000, "ui": f"http://{HOST}:8081"},
    "spark": {"job_port": 8199, "pool_port": 50001, "ui": f"http://{HOST}:8080"},
}
SPARK_APP_UI = f"http://{HOST}:4040"  # the UI of the Spark job server's application (its jobs)
READY_S = 180


class ClusterError(Exception):
    pass


def cache_dir():
    return os.environ.get("FACETAG_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "facetag")


def engines_dir():
    return os.path.join(cache_dir(), "engines")


def state_dir(engine):
    return os.path.join(REPO, "out", "cluster", engine)


def paths(engine):
    e = engines_dir()
    if engine == "flink":
        return {"lib": os.path.join(e, f"flink-{FLINK}", "lib"),
                "job_server": os.path.join(e, f"beam-flink-1.19-job-server-{BEAM_JAVA}.jar")}
    return {"home": os.path.join(e, f"spark-{SPARK}"), "lib": os.path.join(e, f"spark-{SPARK}", "jars"),
            "job_server": os.path.join(e, f"beam-spark-3-job-server-{BEAM_JAVA}.jar")}


# ---------------------------------------------------------------------------------------------------- fetch

def poms(engine):
    return [os.path.join(POMS, f"{engine}-cluster.pom.xml"), os.path.join(POMS, f"{engine}-job-server.pom.xml")]


def marker(engine):
    return os.path.join(engines_dir(), f".{engine}-{BEAM_JAVA}-fetched")


def fetched(engine):
    """Written last by fetch: a fetch that was interrupted (a half-written job server jar) does not count."""
    return os.path.isfile(marker(engine))


def _mvn(pom, goals, *props):
    if not shutil.which("mvn"):
        raise ClusterError("Maven (mvn) is not installed: it fetches the engines from Maven Central")
    # -C: fail on a checksum mismatch against Central's .sha1 files; the SHA-256 list below is checked after.
    cmd = ["mvn", "-B", "-q", "-C", "-f", pom, *goals, f"-Dengines.dir={engines_dir()}", *props]
    if subprocess.run(cmd).returncode:
        raise ClusterError(f"'{' '.join(cmd)}' failed")


def resolved_artifacts(pom):
    """``{group:artifact:type:version: path in the local Maven repository}`` of a pom's whole closure."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        _mvn(pom, ["dependency:list"], "-DoutputAbsoluteArtifactFilename=true", f"-DoutputFile={out.name}",
             "-DincludeScope=runtime")
        found = {}
        for line in out.read().splitlines():
            parts = line.strip().split(":")
            if len(parts) >= 6 and parts[-1].endswith(".jar"):
                # group:artifact:type[:classifier]:version:scope:/path (the path may hold no colon here)
                found[":".join(parts[:-3] + [parts[-3]])] = parts[-1].split(" ")[0]
        return found


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checksums():
    sums = {}
    if os.path.exists(CHECKSUMS):
        with open(CHECKSUMS) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    digest, name = line.split()
                    sums[name] = digest
    return sums


def fetch(engine, record=False):
    """Resolve the engine's pinned artifacts, check every jar's SHA-256 against scripts/engines/SHA256SUMS,
    then lay out the cluster's jars and build the job server jar under the cache folder."""
    expected = read_checksums()
    artifacts = {}
    for pom in poms(engine):
        artifacts.update(resolved_artifacts(pom))
    actual = {name: sha256(path) for name, path in artifacts.items()}
    if record:
        expected.update(actual)
        with open(CHECKSUMS, "w") as f:
            f.write("# SHA-256 of every jar the local clusters use (scripts/cluster.py fetch --record writes it)\n")
            for name in sorted(expected):
                f.write(f"{expected[name]}  {name}\n")
    else:
        unknown = sorted(set(actual) - set(expected))
        wrong = sorted(n for n in actual if n in expected and actual[n] != expected[n])
        if unknown or wrong:
            raise ClusterError(f"checksums: {len(wrong)} jars differ from {CHECKSUMS} ({', '.join(wrong[:3])}), "
                               f"{len(unknown)} are not listed ({', '.join(unknown[:3])})")
    if os.path.exists(marker(engine)):
        os.remove(marker(engine))
    for pom in poms(engine):
        _mvn(pom, ["package"])
    with open(marker(engine), "w") as f:
        f.write(f"{len(actual)} jars checked against {CHECKSUMS}\n")
    print(f"{engine}: {len(actual)} jars checked; engine in {paths(engine)['lib']}, "
          f"job server {paths(engine)['job_server']}")


# ---------------------------------------------------------------------------------------------------- processes

def java():
    home = os.environ.get("JAVA_HOME")
    exe = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not exe or not os.path.exists(exe):
        raise ClusterError("Java is not installed (the clusters need Java 17)")
    return exe


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def loopback_shim():
    """scripts/engines/loopback_bind.c built into the cache folder (once): preloaded into every JVM of the
    clusters, it binds to 127.0.0.1 the servers that Beam's Java code opens on every interface."""
    source = os.path.join(POMS, "loopback_bind.c")
    built = os.path.join(engines_dir(), "loopback_bind.so")
    if not os.path.exists(built) or os.path.getmtime(built) < os.path.getmtime(source):
        compiler = shutil.which("cc") or shutil.which("gcc")
        if not compiler:
            raise ClusterError("a C compiler (cc) is needed once to build scripts/engines/loopback_bind.c, which "
                               "keeps the clusters' servers on 127.0.0.1 (Debian: apt-get install gcc)")
        os.makedirs(engines_dir(), exist_ok=True)
        out = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", built + ".tmp", source, "-ldl"],
                             capture_output=True, text=True)
        if out.returncode:
            raise ClusterError(f"building {source} failed:\n{out.stderr[-2000:]}")
        os.replace(built + ".tmp", built)
    return built


def node_disk(engine, name):
    """The folder an isolated component sees as its /tmp, its own disk (made empty)."""
    disk = os.path.join(state_dir(engine), f"{name}-disk")
    shutil.rmtree(disk, ignore_errors=True)
    os.makedirs(disk)
    return disk


#: What an isolated component does not see of this machine: its temporary folders and the checkout's out/ (where
#: the demo, the tests and the clusters' own state live). TMPDIR is added when it points elsewhere.
HIDDEN = ("/var/tmp", os.path.join(REPO, "out"))
#: Variables an isolated component does not inherit: where the object store is must reach the workers through the
#: job's options (facetag passes its own AWS_ENDPOINT_URL as --s3_endpoint_url), as on a cluster whose nodes
#: were never told. Credentials stay: a cluster's nodes have their own (environment, ~/.aws, instance role).
NOT_INHERITED = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "TMPDIR")


def check_isolation():
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode:
        raise ClusterError("--isolated needs mount namespaces (unshare --mount, as root): "
                           f"{probe.stderr.strip() or 'unshare failed'}")


def isolated(cmd, disk):
    """``cmd`` run in a mount namespace of its own, where ``disk`` is /tmp and HIDDEN are empty folders.

    unshare(1) execs in place (no fork for a mount namespace), so the pid file's pid is still the component's.
    """
    hidden = list(HIDDEN) + ([os.environ["TMPDIR"]] if os.environ.get("TMPDIR", "/tmp").rstrip("/") != "/tmp" else [])
    script = (f"set -e; mount --bind {shlex.quote(disk)} /tmp; "
              + "".join(f"mount -t tmpfs facetag-hidden {shlex.quote(h)}; " for h in hidden if os.path.isdir(h))
              + 'cd /tmp; exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "isolated", *cmd]


def start(engine, name, cmd, env=None, disk=None):
    """Start one component in its own process group, logging to out/cluster/ENGINE/NAME.log; write its pid file.
    A JVM gets the loopback shim (loopback_shim), which its children (Spark's executors) inherit. With ``disk``
    it runs isolated (``isolated``) with that folder as its /tmp."""
    if cmd[0] == java():
        env = {"LD_PRELOAD": loopback_shim(), **(env or {})}
    environment = {**os.environ, **(env or {})}
    if disk:
        cmd = isolated(cmd, disk)
        environment = {k: v for k, v in environment.items() if k not in NOT_INHERITED}
    folder = state_dir(engine)
    log = os.path.join(folder, f"{name}.log")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=environment, start_new_session=True)
    with open(os.path.join(folder, f"{name}.pid"), "w") as f:
        f.write(f"{proc.pid} {_start_time(proc.pid)}\n")
    return proc, log


def stop(engine):
    """SIGTERM each started process group (the pid in each pid file is its group), SIGKILL what is left."""
    folder = state_dir(engine)
    groups = []
    for pid_file in sorted(glob.glob(os.path.join(folder, "*.pid"))):
        with open(pid_file) as f:
            pid, started = f.read().split()
        pid = int(pid)
        if _start_time(pid) == started:  # still the process we started, not a reused pid
            groups.append((pid, pid_file))
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        else:
            os.remove(pid_file)
    deadline = time.monotonic() + 20
    for pid, pid_file in groups:
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        os.remove(pid_file)
    return len(groups)


def group_members(pgids):
    """``[(pid, state letter)]`` of every process in the process groups ``pgids``, from /proc."""
    members = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:
            members.append((int(stat.split("/")[2]), fields[0]))
    return members


def started_groups(engine):
    """The process groups `up` started for ``engine``, from its pid files."""
    groups = set()
    for pid_file in glob.glob(os.path.join(state_dir(engine), "*.pid")):
        with open(pid_file) as f:
            groups.add(int(f.read().split()[0]))
    return groups


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # a zombie leader that nobody reaps (its parent, 'up', has exited) still counts as a member: look deeper
    return any(state != "Z" for _, state in group_members({pgid}))


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def get_json(url, timeout=3):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def wait_for(what, ready, proc, log, seconds=READY_S):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(f"{what} exited with status {proc.returncode}: see {log}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise ClusterError(f"{what} not ready after {seconds} s: see {log}")


def worker_pool(engine, isolate):
    """The Python SDK worker pool, on this environment's python (its SDK workers too)."""
    port = ENGINES[engine]["pool_port"]
    proc, log = start(engine, "worker-pool", [sys.executable, os.path.join(REPO, "scripts", "worker_pool.py"),
                                              f"--service_port={port}"], {"PYTHONUNBUFFERED": "1"},
                      disk=node_disk(engine, "worker-pool") if isolate else None)
    return lambda: wait_for(f"SDK worker pool (port {port})", lambda: port_open(port), proc, log)


def log4j_config(engine):
    """A Log4j 2 configuration that logs INFO to the console (the component's log file under out/cluster/)."""
    path = os.path.join(state_dir(engine), "log4j.properties")
    with open(path, "w") as f:
        f.write("rootLogger.level = INFO\nrootLogger.appenderRef.out.ref = out\nappender.out.type = Console\n"
                "appender.out.name = out\nappender.out.layout.type = PatternLayout\n"
                "appender.out.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n\n")
    return path


def job_server(engine, main_class, *args, jvm=(), env=None):
    port = ENGINES[engine]["job_port"]
    artifacts = os.path.join(state_dir(engine), "artifacts")
    os.makedirs(artifacts, exist_ok=True)
    cmd = [java(), "-Xms256m", "-Xmx768m", *JAVA17_OPENS, f"-Dlog4j2.configurationFile=file:{log4j_config(engine)}",
           *jvm, "-cp", paths(engine)["job_server"], main_class,
           f"--job-host={HOST}", f"--job-port={port}", f"--artifact-port={port - 1}", f"--expansion-port={port - 2}",
           f"--artifacts-dir={artifacts}", *args]
    proc, log = start(engine, "job-server", cmd, env)
    return lambda: wait_for(f"Beam {engine} job server (port {port})", lambda: port_open(port), proc, log)


FLINK_CONF = f"""\
jobmanager.rpc.address: {HOST}
jobmanager.rpc.port: 6123
jobmanager.bind-host: {HOST}
jobmanager.memory.process.size: 768m
rest.address: {HOST}
rest.bind-address: {HOST}
rest.port: 8081
taskmanager.host: {HOST}
taskmanager.bind-host: {HOST}
taskmanager.rpc.port: 0
taskmanager.data.port: 0
taskmanager.numberOfTaskSlots: 1
taskmanager.memory.process.size: 1024m
taskmanager.memory.managed.size: 64m
# Beam's batch jobs shuffle between many operators: Flink's default of 512 buffers per sort-shuffle partition
# does not fit a small TaskManager ('Insufficient number of network buffers').
taskmanager.memory.network.min: 128m
taskmanager.memory.network.max: 128m
taskmanager.network.sort-shuffle.min-buffers: 64
parallelism.default: 2
# The TaskManagers load Beam's runner from their own classpath (the job server jar, appended there), not from the
# job's jar: Beam keeps a job's SDK workers between its stages (the pipeline option environment_cache_millis) only
# when its runner classes were not loaded by Flink's per-job class loader; otherwise every stage of every
# TaskManager starts, and waits for, a fresh SDK worker process that imports Beam and facetag and loads the models.
classloader.resolve-order: parent-first
blob.server.port: 0
env.java.opts.all: {" ".join(JAVA17_OPENS)}
"""


def _flink_jvm_params(conf_dir, lib, which):
    """Flink's own memory arithmetic (what taskmanager.sh/jobmanager.sh ask BashJavaUtils for)."""
    out = subprocess.run([java(), "-cp", os.path.join(lib, "*"), "org.apache.flink.runtime.util.bash.BashJavaUtils",
                          which, "--configDir", conf_dir], capture_output=True, text=True)
    results = [line.split(":", 1)[1] for line in out.stdout.splitlines() if line.startswith("BASH_JAVA_UTILS_EXEC_RESULT:")]
    if out.returncode or len(results) < 2:
        raise ClusterError(f"Flink's BashJavaUtils {which} failed: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return results[0].split(), results[1].split()


def flink_up(isolate):
    p = paths("flink")
    folder = state_dir("flink")
    conf = os.path.join(folder, "conf")
    os.makedirs(conf, exist_ok=True)
    with open(os.path.join(conf, "flink-conf.yaml"), "w") as f:
        f.write(FLINK_CONF)
    classpath = os.path.join(p["lib"], "*")
    logging = [f"-Dlog4j.configurationFile=file:{log4j_config('flink')}", f"-Dlog.file={folder}/unused.log"]
    jm_jvm, jm_dyn = _flink_jvm_params(conf, p["lib"], "GET_JM_RESOURCE_PARAMS")
    jm, jm_log = start("flink", "jobmanager", [java(), *jm_jvm, *JAVA17_OPENS, *logging, "-cp", classpath,
                                               "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                                               "--configDir", conf, *jm_dyn])
    tm_jvm, tm_dyn = _flink_jvm_params(conf, p["lib"], "GET_TM_RESOURCE_PARAMS")
    tm_classpath = classpath + os.pathsep + p["job_server"]  # Flink's own classes first (see FLINK_CONF)
    tms = []
    for i in (1, 2):
        name, tm_conf, tm_logging = f"taskmanager-{i}", conf, logging
        disk = node_disk("flink", name) if isolate else None
        if disk:  # its configuration on its own disk, seen as /tmp
            shutil.copytree(conf, os.path.join(disk, "conf"))
            shutil.copy(log4j_config("flink"), disk)
            tm_conf = "/tmp/conf"
            tm_logging = ["-Dlog4j.configurationFile=file:/tmp/log4j.properties", "-Dlog.file=/tmp/unused.log"]
        tms.append(start("flink", name, [java(), *tm_jvm, *JAVA17_OPENS, *tm_logging, "-cp", tm_classpath,
                                         "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                                         "--configDir", tm_conf, *tm_dyn], disk=disk))
    pool_ready = worker_pool("flink", isolate)
    ui = ENGINES["flink"]["ui"]
    wait_for("Flink JobManager REST API (8081)", lambda: get_json(f"{ui}/overview") is not None, jm, jm_log)
    for i, (tm, log) in enumerate(tms, 1):
        wait_for(f"Flink TaskManager {i}", lambda: len(get_json(f"{ui}/taskmanagers")["taskmanagers"]) >= i, tm, log)
    js_ready = job_server("flink", "org.apache.beam.runners.flink.FlinkJobServerDriver", f"--flink-master={HOST}:8081")
    pool_ready()
    js_ready()


def spark_up(isolate):
    p = paths("spark")
    folder = state_dir("spark")
    env = {"SPARK_HOME": p["home"], "SPARK_SCALA_VERSION": "2.12", "SPARK_LOCAL_IP": HOST, "SPARK_LOCAL_HOSTNAME": HOST,
           "SPARK_LOG_DIR": folder}
    classpath = os.path.join(p["lib"], "*")
    base = [java(), "-Xms256m", "-Xmx512m", *JAVA17_OPENS, "-cp", classpath]
    master, master_log = start("spark", "master", [*base, "org.apache.spark.deploy.master.Master", "--host", HOST,
                                                   "--port", "7077", "--webui-port", "8080"], env)
    ui = ENGINES["spark"]["ui"]
    wait_for("Spark master (7077, UI 8080)", lambda: get_json(f"{ui}/json/") is not None, master, master_log)
    workers = []
    for i in (1, 2):
        name = f"worker-{i}"
        disk = node_disk("spark", name) if isolate else None
        # each application's executors keep a copy of the job server jar in the work folder: made empty
        work = os.path.join(disk, "work") if disk else node_disk("spark", name)
        os.makedirs(work, exist_ok=True)
        workers.append(start("spark", name, [
            *base, "org.apache.spark.deploy.worker.Worker", "--host", HOST, "--webui-port", str(8090 + i),
            "--cores", "1", "--memory", "1g", "--work-dir", "/tmp/work" if disk else work, f"spark://{HOST}:7077"],
            env, disk=disk))
    pool_ready = worker_pool("spark", isolate)
    for i, (w, log) in enumerate(workers, 1):
        wait_for(f"Spark worker {i}", lambda: get_json(f"{ui}/json/").get("aliveworkers", 0) >= i, w, log)
    driver = [f"-Dspark.{k}={v}" for k, v in {
        "driver.host": HOST, "driver.bindAddress": HOST, "ui.port": "4040", "executor.memory": "768m",
        "executor.cores": "1", "cores.max": "2"}.items()]
    # Beam's Spark job server makes a Spark application per job by default: new executor JVMs on both workers,
    # each fetching the 270 MB job server jar, about 40 s of every job here. This property of Beam's
    # SparkContextFactory (named for Beam's own tests) keeps one application, whose executors run every job;
    # its jobs are listed by the application's UI (127.0.0.1:4040, /api/v1/applications).
    driver.append("-Dbeam.spark.test.reuseSparkContext=true")
    if isolate:
        # Spark reads the shuffle files of another executor on the same host straight from its disk; isolated
        # workers share no disk, as executors on different machines, so they fetch them over the network.
        driver.append("-Dspark.shuffle.readHostLocalDisk=false")
    js_ready = job_server("spark", "org.apache.beam.runners.spark.SparkJobServerDriver",
                          f"--spark-master-url=spark://{HOST}:7077", jvm=driver, env=env)
    pool_ready()
    js_ready()


def up(engine, isolate=False):
    if not fetched(engine):
        raise ClusterError(f"{engine} is not fetched yet: run 'make engines ENGINE={engine}' "
                           f"(or python scripts/cluster.py fetch {engine})")
    folder = state_dir(engine)
    os.makedirs(folder, exist_ok=True)
    if glob.glob(os.path.join(folder, "*.pid")):
        stop(engine)  # a previous 'up' that was never taken down
    if isolate:
        check_isolation()
    begun = time.monotonic()
    try:
        flink_up(isolate) if engine == "flink" else spark_up(isolate)
    except BaseException:
        stop(engine)
        raise
    print(f"{engine}: up in {time.monotonic() - begun:.0f} s"
          f"{' (workers isolated: no disk shared with this machine)' if isolate else ''}; job server {HOST}:{ENGINES[engine]['job_port']}, "
          f"SDK worker pool {HOST}:{ENGINES[engine]['pool_port']}, UI {ENGINES[engine]['ui']}; "
          f"logs in {os.path.relpath(folder, REPO)}/ (use configs/{engine}-local.yaml)")


def status(engine):
    ui = ENGINES[engine]["ui"]
    try:
        if engine == "flink":
            tms = get_json(f"{ui}/taskmanagers")["taskmanagers"]
            jobs = get_json(f"{ui}/jobs/overview")["jobs"]
            print(f"flink: {len(tms)} TaskManagers; jobs: " + (", ".join(f"{j['name']} {j['state']}" for j in jobs) or "none"))
        else:
            state = get_json(f"{ui}/json/")
            apps = get_json(f"{SPARK_APP_UI}/api/v1/applications", 60) if port_open(4040) else []
            jobs = [j["status"] for a in apps
                    for j in get_json(f"{SPARK_APP_UI}/api/v1/applications/{a['id']}/jobs", 60)]
            print(f"spark: {state['aliveworkers']} workers alive; the job server's application: "
                  + (f"{len(jobs)} Spark jobs ({', '.join(f'{jobs.count(s)} {s}' for s in sorted(set(jobs)))})"
                     if apps else "not started (it starts with the first Beam job)"))
    except OSError as e:
        raise ClusterError(f"{engine}: not reachable at {ui} ({e})") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Local Flink and Spark clusters for facetag's Beam jobs")
    parser.add_argument("action", choices=["fetch", "up", "down", "status"])
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("--record", action="store_true", help="fetch: write the checksums instead of checking them")
    parser.add_argument("--isolated", action="store_true",
                        help="up: start the workers and SDK worker pool in mount namespaces of their own (root)")
    args = parser.parse_args(argv)
    try:
        if args.action == "fetch":
            fetch(args.engine, args.record)
        elif args.action == "up":
            up(args.engine, args.isolated)
        elif args.action == "down":
            n = stop(args.engine)
            print(f"{args.engine}: stopped {n} process groups" if n else f"{args.engine}: nothing running")
        else:
            status(args.engine)
    except ClusterError as e:
        sys.exit(f"cluster {args.action} {args.engine}: {e}")


if __name__ == "__main__":
    main()
