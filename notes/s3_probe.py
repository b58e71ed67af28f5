"""Probe an S3 endpoint for what facetag's store needs: conditional writes and listing metadata.

Usage: AWS_ENDPOINT_URL=... python notes/s3_probe.py [bucket]   (prints one line per check)
"""
import os
import sys

import boto3
from botocore.exceptions import ClientError


def status(fn):
    try:
        fn()
        return "200"
    except ClientError as e:
        return f"{e.response['ResponseMetadata']['HTTPStatusCode']} {e.response['Error']['Code']}"


def main(bucket="probe"):
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError:
        pass
    key = "probe/obj"
    s3.delete_object(Bucket=bucket, Key=key)
    r = {}
    r["create-only on absent (If-None-Match: *)"] = status(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"a", IfNoneMatch="*"))
    r["create-only on present (expect 412)"] = status(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"b", IfNoneMatch="*"))
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    r["If-Match stale etag (expect 412)"] = status(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"c", IfMatch='"0123"'))
    r["If-Match current etag (expect 200)"] = status(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"d", IfMatch=etag))
    r["If-Match old etag after change (expect 412)"] = status(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"e", IfMatch=etag))
    r["If-Match on absent key (expect 404)"] = status(lambda: s3.put_object(Bucket=bucket, Key="probe/none", Body=b"e", IfMatch=etag))
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    r["content after the checks (expect b'd')"] = repr(body)
    etag2 = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    # Conditional delete (S3 added If-Match on DeleteObject in 2024).
    r["DeleteObject If-Match stale (expect 412)"] = status(lambda: s3.delete_object(Bucket=bucket, Key=key, IfMatch='"0123"'))
    r["object still there after stale delete"] = str("Contents" in s3.list_objects_v2(Bucket=bucket, Prefix=key))
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="probe/")["Contents"][0]
    r["ListObjectsV2 fields"] = ", ".join(sorted(k for k in listing if k in ("ETag", "Size", "LastModified", "Key")))
    r["ListObjectsV2 ETag == HEAD ETag"] = str(listing.get("ETag") == etag2)
    r["LastModified"] = str(listing.get("LastModified"))
    for k, v in r.items():
        print(f"{k:48s} {v}")


if __name__ == "__main__":
    main(*sys.argv[1:])
