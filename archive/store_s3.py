"""The S3 store (AWS S3, SeaweedFS, MinIO), through boto3.

Configuration comes from the usual AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``/``AWS_DEFAULT_REGION``) plus ``ATTEST_S3_ENDPOINT``
for non-AWS servers, and ``ATTEST_S3_OBJECT_LOCK_DAYS`` to give every WARC a COMPLIANCE
retention date. These are read by the entry point (see ``settings.py``) and passed in.

Uploads are single-part PUTs with a SHA-256 checksum of the whole object (multipart checksums
are composites, which no one can compare with ``sha256sum``), so objects are limited to 5 GB;
WARCs rotate at 1 GB by default.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlparse

from archive.errors import ConfigError, DigestMismatch, StorageError, StoreUnavailable
from archive.store import StoredObject, _same_or_raise, validate_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_SINGLE_PUT = 5 * 1024**3


def _b64(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode("ascii")


def _hex(b64digest: str) -> str:
    return base64.b64decode(b64digest).hex()


class S3Store:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: S3Client,
        *,
        object_lock_days: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        if not bucket:
            raise ConfigError("s3 store URI needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.object_lock_days = object_lock_days
        self.endpoint = endpoint
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        object_lock_days: int | None = None,
    ) -> S3Store:
        import boto3
        from botocore.config import Config

        parsed = urlparse(uri)
        endpoint = endpoint or os.environ.get("ATTEST_S3_ENDPOINT") or None
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if object_lock_days is None and os.environ.get("ATTEST_S3_OBJECT_LOCK_DAYS"):
            raw = os.environ["ATTEST_S3_OBJECT_LOCK_DAYS"]
            try:
                object_lock_days = int(raw)
            except ValueError as exc:
                raise ConfigError(f"ATTEST_S3_OBJECT_LOCK_DAYS={raw!r} is not a number of days") from exc
            if object_lock_days <= 0:
                raise ConfigError(f"ATTEST_S3_OBJECT_LOCK_DAYS={raw!r} must be positive")
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or "us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )
        return cls(
            parsed.netloc,
            parsed.path,
            client,
            object_lock_days=object_lock_days,
            endpoint=endpoint,
        )

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def object_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _call(self, what: str, func: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return func(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise StorageError(f"{self.uri}: {what} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"{self.uri}: {what} failed: {exc}") from exc

    def stat(self, key: str) -> StoredObject | None:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise StorageError(f"{self.object_uri(key)}: head failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"{self.uri}: head {key} failed: {exc}") from exc
        checksum = head.get("ChecksumSHA256")
        sha = _hex(checksum) if checksum and "-" not in checksum else head.get("Metadata", {}).get("sha256", "")
        return StoredObject(key, int(head["ContentLength"]), sha, self.object_uri(key))

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        size = path.stat().st_size
        if size > MAX_SINGLE_PUT:
            raise StorageError(f"{path}: {size} bytes is over the 5 GB single-PUT limit")
        existing = self.stat(key)
        if existing is not None:
            return _same_or_raise(existing, sha256, self.object_uri(key))
        extra: dict[str, Any] = {}
        if self.object_lock_days:
            extra["ObjectLockMode"] = "COMPLIANCE"
            extra["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=self.object_lock_days)
        with open(path, "rb") as body:
            self._call(
                f"put {key}",
                self.client.put_object,
                Bucket=self.bucket,
                Key=self._key(key),
                Body=body,
                ContentLength=size,
                ContentType="application/warc" if key.endswith(".warc.gz") else "application/octet-stream",
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=_b64(sha256),
                Metadata={"sha256": sha256},
                **extra,
            )
        stored = self.stat(key)
        if stored is None or stored.sha256 != sha256 or stored.size != size:
            raise DigestMismatch(
                f"{self.object_uri(key)}: server reports {stored}, expected {size} bytes sha256 {sha256}"
            )
        return stored

    def open(self, key: str) -> BinaryIO:
        resp = self._call(f"get {key}", self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        return cast(BinaryIO, resp["Body"])

    def keys(self, prefix: str = "") -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        base = self.prefix + "/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"][len(base) :]
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"{self.uri}: list failed: {exc}") from exc
