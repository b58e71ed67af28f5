"""delta-rs on the local S3 server: which settings it reads from the environment, and whether
concurrent commits are safe (no lost, no duplicated commit; conflicts raise a clear error).

Usage (after eval "$(make -s s3-up)"):
    python notes/delta_concurrency.py env                 # what env vars delta-rs needs by itself
    python notes/delta_concurrency.py append P K [opt=v]  # P processes append K single-row commits each
    python notes/delta_concurrency.py merge P K [opt=v]   # P processes upsert the same keys K times each
"""
import multiprocessing as mp
import os
import sys
import time
import uuid

import pyarrow as pa


def options(extra):
    return dict(kv.split("=", 1) for kv in extra) or None


def env_check():
    from deltalake import DeltaTable, write_deltalake

    table = f"s3://facetag/env-{uuid.uuid4().hex[:8]}"
    data = pa.table({"x": [1, 2, 3]})
    saved = {k: os.environ.pop(k) for k in ("AWS_ALLOW_HTTP",) if k in os.environ}
    try:
        write_deltalake(table, data)
        print("without AWS_ALLOW_HTTP: write worked")
    except Exception as e:
        print(f"without AWS_ALLOW_HTTP: {type(e).__name__}: {str(e)[:300]}")
    os.environ.update(saved)
    write_deltalake(table, data)
    write_deltalake(table, data, mode="append")
    dt = DeltaTable(table)
    print(f"with the env vars alone (no storage_options): version {dt.version()}, rows "
          f"{dt.to_pyarrow_table().num_rows}, files {dt.file_uris()[:1]}")


def appender(args):
    table, proc, k, opts, start = args
    from deltalake import write_deltalake

    while time.time() < start:
        pass
    errors = []
    for i in range(k):
        try:
            write_deltalake(table, pa.table({"proc": [proc], "i": [i]}), mode="append", storage_options=opts)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {str(e)[:200]}")
    return errors


def merger(args):
    table, proc, k, opts, start = args
    from deltalake import DeltaTable

    while time.time() < start:
        pass
    ok, errors = 0, []
    for i in range(k):
        try:
            src = pa.table({"key": list(range(10)), "proc": [proc] * 10, "i": [i] * 10})
            (DeltaTable(table, storage_options=opts).merge(src, "t.key = s.key", source_alias="s", target_alias="t")
             .when_matched_update_all().when_not_matched_insert_all().execute())
            ok += 1
        except Exception as e:
            errors.append(f"{type(e).__name__}: {str(e)[:200]}")
    return ok, errors


def run(kind, procs, k, extra):
    from deltalake import DeltaTable, write_deltalake

    opts = options(extra)
    procs, k = int(procs), int(k)
    table = f"s3://facetag/{kind}-{uuid.uuid4().hex[:8]}"
    if kind == "append":
        write_deltalake(table, pa.table({"proc": pa.array([], pa.int64()), "i": pa.array([], pa.int64())}),
                        storage_options=opts)
    else:
        write_deltalake(table, pa.table({"key": list(range(10)), "proc": [-1] * 10, "i": [-1] * 10}),
                        storage_options=opts)
    start = time.time() + 2
    t0 = time.time()
    with mp.get_context("spawn").Pool(procs) as pool:
        results = pool.map(appender if kind == "append" else merger,
                           [(table, p, k, opts, start) for p in range(procs)])
    seconds = time.time() - start
    dt = DeltaTable(table, storage_options=opts)
    rows = dt.to_pyarrow_table()
    history = dt.history()
    ops = {}
    for h in history:
        ops[h["operation"]] = ops.get(h["operation"], 0) + 1
    if kind == "append":
        errors = [e for r in results for e in r]
        pairs = list(zip(rows["proc"].to_pylist(), rows["i"].to_pylist()))
        expect = procs * k - len(errors)
        print(f"append {procs}x{k} opts={opts}: {seconds:.1f}s, version {dt.version()}, rows {len(pairs)}, "
              f"distinct {len(set(pairs))}, expected {expect} (commits that raised: {len(errors)}); history {ops}")
    else:
        errors = [e for _, r in results for e in r]
        oks = sum(ok for ok, _ in results)
        print(f"merge {procs}x{k} opts={opts}: {seconds:.1f}s, version {dt.version()} (1 + successful merges "
              f"{oks} = {1 + oks}), rows {rows.num_rows} (must be 10), failed merges {len(errors)}; history {ops}")
    for e in sorted(set(errors))[:3]:
        print("   error:", e)


if __name__ == "__main__":
    if sys.argv[1] == "env":
        env_check()
    else:
        run(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
