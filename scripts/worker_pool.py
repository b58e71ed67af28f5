"""Beam's Python SDK worker pool for the EXTERNAL environment, listening on 127.0.0.1 only.

``python -m apache_beam.runners.worker.worker_pool_main`` listens on every interface (``[::]:PORT``) and starts
each SDK worker bare: without the job's pipeline options, so on a worker Beam's file systems have none
(``s3://`` fails: "Must provide one of client or options") and settings such as ``--s3_endpoint_url`` never
arrive. This pool starts each worker the way Beam's SDK container does (its boot program): it asks the
runner's provision service for the job's pipeline options and endpoints, then runs Beam's
``sdk_worker_main`` with them, whose logs go to the runner (the TaskManager's or executor's log). Besides:

- Beam's pool keeps its workers by worker id, but each TaskManager numbers its workers from "1-1": two
  TaskManagers asking for "1-1" got two processes under one key, and the first StopWorker killed the *other*
  TaskManager's worker, whose stage then waited 3 minutes for it ("No client connected within timeout").
  Here StopWorker stops nothing: an SDK worker exits by itself when the runner closes its control channel,
  and the pool only reaps it.
- Beam's pool pipes each worker's stdout and never reads it (a worker that prints 64 KiB blocks); here the
  workers' output goes to the pool's log.

    python scripts/worker_pool.py --service_port=50000
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading

import grpc
from apache_beam.portability.api import (
    beam_fn_api_pb2,
    beam_fn_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_provision_api_pb2_grpc,
    endpoints_pb2,
)
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer, kill_process_gracefully
from apache_beam.utils import thread_pool_executor
from google.protobuf import json_format, text_format

PROVISION_TIMEOUT_S = 60


def worker_environment(request):
    """The environment Beam's SDK container gives ``sdk_worker_main``, from the runner's provision service."""
    with grpc.insecure_channel(request.provision_endpoint.url) as channel:
        info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", request.worker_id)],
            timeout=PROVISION_TIMEOUT_S).info

    def descriptor(url):
        return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url), as_one_line=True)

    env = {"WORKER_ID": request.worker_id,
           "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
           "CONTROL_API_SERVICE_DESCRIPTOR": descriptor(request.control_endpoint.url or info.control_endpoint.url),
           "RUNNER_CAPABILITIES": " ".join(info.runner_capabilities)}
    logging_url = request.logging_endpoint.url or info.logging_endpoint.url
    if logging_url:
        env["LOGGING_API_SERVICE_DESCRIPTOR"] = descriptor(logging_url)
    if info.status_endpoint.url:
        env["STATUS_API_SERVICE_DESCRIPTOR"] = descriptor(info.status_endpoint.url)
    return env


class WorkerPool(BeamFnExternalWorkerPoolServicer):
    def __init__(self):
        super().__init__(use_process=True)
        self.workers = []
        self.lock = threading.Lock()

    def StartWorker(self, request, unused_context):  # noqa: N802 - gRPC's method name
        try:
            env = {**os.environ, **worker_environment(request)}
            proc = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], env=env,
                                    stdin=subprocess.DEVNULL, close_fds=True)
        except (OSError, grpc.RpcError) as e:
            logging.error("SDK worker %s not started: %s", request.worker_id, e)
            return beam_fn_api_pb2.StartWorkerResponse(error=str(e))
        logging.info("SDK worker %s (pid %d) for %s", request.worker_id, proc.pid, request.control_endpoint.url)
        with self.lock:
            self.workers = [p for p in self.workers if p.poll() is None] + [proc]
        return beam_fn_api_pb2.StartWorkerResponse()

    def StopWorker(self, request, unused_context):  # noqa: N802
        with self.lock:
            self.workers = [p for p in self.workers if p.poll() is None]
        return beam_fn_api_pb2.StopWorkerResponse()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service_port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)

    server = grpc.server(thread_pool_executor.shared_unbounded_instance(),
                         options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)])
    pool = WorkerPool()
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    if not server.add_insecure_port(f"{args.host}:{args.service_port}"):
        raise SystemExit(f"worker pool: cannot listen on {args.host}:{args.service_port}")
    server.start()
    logging.info("SDK worker pool listening on %s:%d", args.host, args.service_port)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=2)
    for proc in pool.workers:
        kill_process_gracefully(proc, timeout=5)


if __name__ == "__main__":
    main()
