"""What Beam's Flink job server leaves undone: cancelling a batch job on Flink itself.

Beam's Flink job server (2.62) runs a batch job by a blocking call, so its Cancel marks the Beam job
CANCELLED but leaves the Flink job running to its end (measured: bench/RESULTS.md, issue 27). Flink's REST
API, at the job's ``flink_master``, cancels it; Flink names the job as Beam named it, the job id up to its "_".
"""

import json
import time
import urllib.request

_ENDED = {"FINISHED", "CANCELED", "FAILED"}


def cancel_flink_job(master, job, wait_s):
    """Cancel the Flink job that Beam's job ``job`` runs as, and wait up to ``wait_s`` until Flink says it
    stopped; what became of it, in words."""
    base = master if "://" in master else f"http://{master}"
    name = job.split("_", 1)[0]

    def states():
        return [j["state"] for j in _rest_json(f"{base}/jobs/overview")["jobs"] if j["name"] == name]

    running = [j for j in _rest_json(f"{base}/jobs/overview")["jobs"] if j["name"] == name and j["state"] not in _ENDED]
    for found in running:
        urllib.request.urlopen(urllib.request.Request(f"{base}/jobs/{found['jid']}?mode=cancel", method="PATCH"),
                               timeout=10).close()
    if not states():
        return f"the job {job} was cancelled (Flink at {master} had not started it)"
    if not waited(lambda: all(state in _ENDED for state in states()), wait_s):
        return f"the Flink job {name} was asked to cancel but was still running after {wait_s} s: see {base}"
    return f"the job {job} was cancelled on Flink ({', '.join(states())})"


def waited(done, seconds, every=0.5):
    """True once ``done()`` is, False if it is not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def _rest_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
