"""Proof of notes/objectlock.py with concurrent processes, on the local S3 server and on a local folder.

    eval "$(make -s s3-up)"; python notes/objectlock_test.py [s3://facetag/locktest] [/tmp/locktest]
"""
import multiprocessing as mp
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objectlock import Cell, Conflict, Lease, LeaseLost, Manifest, StoreBusy  # noqa: E402


def cas_incrementer(args):
    url, k = args
    m = Manifest(url)
    conflicts = 0
    for _ in range(k):
        while True:
            data = m.load()
            try:
                m.publish({"n": data["n"] + 1})
                break
            except Conflict:
                conflicts += 1
    return conflicts


def lease_worker(args):
    base, k = args
    counter = Cell(base + "/counter")
    inside = 0
    for _ in range(k):
        lease = Lease(base + "/_lease.json", ttl=10)
        lease.acquire(wait=120, poll=0.02)
        data, _ = counter.read()
        # An unconditional overwrite: only the lease keeps two holders from losing an increment here.
        if isinstance(counter, type(Cell("/tmp/x"))):
            os.makedirs(os.path.dirname(counter.url), exist_ok=True)
            with open(counter.url, "wb") as f:
                f.write(str(int(data) + 1).encode())
        else:
            counter.obstore.put(counter.store, counter.key, str(int(data) + 1).encode())
        inside += 1
        lease.release()
    return inside


def killed_holder(url):
    lease = Lease(url, run_id="victim", ttl=3)
    lease.acquire()
    os.kill(os.getpid(), signal.SIGKILL)


def check(base, procs=4, k=15):
    print(f"--- {base}")
    # 1. CAS: P processes increment store.json's counter by load/publish, retrying on Conflict.
    url = f"{base}/store.json"
    Manifest(url).publish({"n": 0})
    t = time.time()
    with mp.get_context("spawn").Pool(procs) as pool:
        conflicts = sum(pool.map(cas_incrementer, [(url, k)] * procs))
    n = Manifest(url).load()["n"]
    print(f"CAS counter: {procs}x{k} increments -> {n} (must be {procs * k}), conflicts detected and retried "
          f"{conflicts}, {time.time() - t:.1f}s  {'OK' if n == procs * k else 'FAIL'}")
    # 2. CAS conflict detection: two readers of one version, the second publish must fail.
    a, b = Manifest(url), Manifest(url)
    a.load(), b.load()
    a.publish({"n": -1})
    try:
        b.publish({"n": -2})
        print("CAS stale publish: accepted  FAIL")
    except Conflict:
        print("CAS stale publish: Conflict  OK")
    try:
        Manifest(url).publish({"n": 0})  # a new store.json where one exists (create-only)
        print("CAS create over existing: accepted  FAIL")
    except Conflict:
        print("CAS create over existing: Conflict  OK")
    # 3. Lease mutual exclusion: P processes take the lease K times each and do an unguarded read-modify-write.
    Cell(base + "/counter").create(b"0") if Cell(base + "/counter").read()[0] is None else None
    start = int(Cell(base + "/counter").read()[0])
    t = time.time()
    with mp.get_context("spawn").Pool(procs) as pool:
        entered = sum(pool.map(lease_worker, [(base, k)] * procs))
    final = int(Cell(base + "/counter").read()[0]) - start
    print(f"lease contention: {procs}x{k} critical sections -> counter +{final} (must be {entered}), "
          f"{time.time() - t:.1f}s  {'OK' if final == entered == procs * k else 'FAIL'}")
    # 4. A killed holder: the lease blocks (StoreBusy with who and since when) until it expires, then is taken.
    lurl = f"{base}/_lease_kill.json"
    p = mp.get_context("spawn").Process(target=killed_holder, args=(lurl,))
    p.start()
    p.join()
    t = time.time()
    try:
        Lease(lurl, ttl=3, skew=1).acquire(wait=0)
        print("killed holder: lease free at once  FAIL")
    except StoreBusy as e:
        print(f"killed holder (SIGKILL, exit {p.exitcode}): second run told: {e}")
    lease = Lease(lurl, ttl=3, skew=1)
    taken = lease.acquire(wait=30, poll=0.2)
    print(f"killed holder: lease taken over after {time.time() - t:.1f}s from run {taken['run_id']}  "
          f"{'OK' if taken['run_id'] == 'victim' else 'FAIL'}")
    lease.release()
    # 5. A stalled holder (no renewals) whose lease expired and was taken must not commit.
    lurl = f"{base}/_lease_stall.json"
    stalled = Lease(lurl, run_id="stalled", ttl=2, renew_every=1e9, skew=0.5)
    stalled.acquire()
    time.sleep(2.7)
    thief = Lease(lurl, run_id="thief", ttl=10, skew=0.5)
    thief.acquire(wait=5)
    try:
        stalled.check()
        print("stalled holder: check() passed after its lease was taken  FAIL")
    except LeaseLost as e:
        print(f"stalled holder: {e}  OK")
    stalled.release()  # must not release the thief's lease
    data, _ = Cell(lurl).read()
    import json
    record = json.loads(data)
    kept = record["run_id"] == "thief" and not record["released"]
    print(f"stalled holder's release left the thief's lease held: {kept}  {'OK' if kept else 'FAIL'}")
    thief.release()
    # 6. A released lease is free at once.
    l1 = Lease(f"{base}/_lease_rel.json", ttl=60)
    l1.acquire()
    l1.release()
    t = time.time()
    Lease(f"{base}/_lease_rel.json", ttl=60).acquire(wait=0)
    print(f"released lease retaken at once ({time.time() - t:.2f}s)  OK")


if __name__ == "__main__":
    run = uuid.uuid4().hex[:6]
    targets = sys.argv[1:] or ["s3://facetag/locktest", "/tmp/objectlock-test"]
    for target in targets:
        check(f"{target.rstrip('/')}/{run}")
