"""Is the server's create-only put (If-None-Match: *) and If-Match put atomic under concurrency?

P processes race on the same N keys (create-only), then on one counter object (If-Match increments).
A correct server: every key has exactly one winner; the counter equals the number of successful puts.
Usage: AWS_ENDPOINT_URL=... python notes/race_probe.py [procs] [keys]
"""
import multiprocessing as mp
import os
import sys
import time
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client():
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def creator(args):
    bucket, prefix, n, start = args
    s3 = client()
    while time.time() < start:
        pass
    wins = []
    for i in range(n):
        try:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/k{i}", Body=os.urandom(8), IfNoneMatch="*")
            wins.append(i)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] in (409, 412), e
    return wins


def incrementer(args):
    bucket, key, n, start = args
    s3 = client()
    while time.time() < start:
        pass
    ok = conflicts = 0
    while ok < n:
        got = s3.get_object(Bucket=bucket, Key=key)
        value = int(got["Body"].read())
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=str(value + 1).encode(), IfMatch=got["ETag"])
            ok += 1
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] in (409, 412), e
            conflicts += 1
    return ok, conflicts


def main(procs=4, keys=300):
    procs, keys = int(procs), int(keys)
    bucket = "race"
    s3 = client()
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError:
        pass
    prefix = uuid.uuid4().hex
    start = time.time() + 1.0
    with mp.Pool(procs) as pool:
        results = pool.map(creator, [(bucket, prefix, keys, start)] * procs)
    winners = [sum(i in r for r in results) for i in range(keys)]
    double = sum(w > 1 for w in winners)
    print(f"create-only: {procs} processes x {keys} keys: keys with 0 winners {winners.count(0)}, "
          f"with >1 winners {double} (must be 0)")
    key = f"{prefix}/counter"
    s3.put_object(Bucket=bucket, Key=key, Body=b"0")
    per = keys // 3
    start = time.time() + 1.0
    with mp.Pool(procs) as pool:
        results = pool.map(incrementer, [(bucket, key, per, start)] * procs)
    final = int(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    print(f"If-Match counter: {procs} x {per} increments, conflicts retried {sum(c for _, c in results)}, "
          f"final {final} (must be {procs * per}; lost updates {procs * per - final})")


if __name__ == "__main__":
    main(*sys.argv[1:])
