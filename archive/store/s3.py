"""The S3 store (AWS S3, SeaweedFS, MinIO), through boto3.

Configuration comes from the usual AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``/``AWS_DEFAULT_REGION``) plus ``ATTEST_S3_ENDPOINT``
for non-AWS servers, and ``ATTEST_S3_OBJECT_LOCK_DAYS`` to give every WARC a COMPLIANCE
retention date. These are read by the entry point (see ``settings.py``) and passed in.

Uploads are single-part PUTs with a SHA-256 checksum of the whole object (multipart checksums
are composites, which no one can compare with ``sha256sum``), so objects are limited to 5 GB;
WARCs rotate at 1 GB by default.

Every object version is kept (a versioned bucket; Object Lock requires one): a put returns the
version it created (:attr:`~archive.store.StoredObject.version_id`), and reads and holds take a
``version`` so that evidence is read and held as the version that was stored, never a later
one put under the same key by someone else.

Legal holds need a bucket with Object Lock enabled, and that is checked first: SeaweedFS (4.48)
accepts and reports a legal hold on any versioned bucket, yet only enforces it where Object
Lock is on, so a hold that was merely accepted would be a false assurance.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast
from urllib.parse import urlparse

from archive.errors import (
    ConfigError,
    DigestMismatch,
    HoldUnsupported,
    NotFound,
    StorageError,
    StoreUnavailable,
)
from archive.store.base import (
    LegalHold,
    RangeReader,
    StoredObject,
    checked_range,
    same_or_raise,
    validate_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

MAX_SINGLE_PUT = 5 * 1024**3
# S3 bucket naming rules (lowercase letters, digits, dots, hyphens; 3-63 characters).
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _b64(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode("ascii")


def _hex(b64digest: str) -> str:
    return base64.b64decode(b64digest).hex()


def _version_id(response: Any) -> str | None:
    """The object version a response names; None in a bucket without versions ("null")."""
    version = response.get("VersionId") if response is not None else None
    return None if not version or version == "null" else str(version)


def _server_sha256(head: HeadObjectOutputTypeDef) -> str | None:
    """The server's SHA-256 of the whole object, if it reports one (not a multipart composite)."""
    checksum = head.get("ChecksumSHA256")
    if not checksum or "-" in checksum or head.get("ChecksumType") == "COMPOSITE":
        return None
    return _hex(checksum)


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
        # Object Lock, once enabled on a bucket, cannot be disabled: a "yes" is kept.
        self._object_lock = False

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
        if parsed.scheme != "s3" or parsed.query or parsed.fragment:
            raise ConfigError(f"store URI {uri!r}: use s3://bucket/prefix")
        if not BUCKET_NAME.fullmatch(parsed.netloc):
            raise ConfigError(
                f"store URI {uri!r}: {parsed.netloc!r} is not a bucket name (s3://bucket/prefix)"
            )
        prefix = parsed.path.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except ConfigError as exc:
                raise ConfigError(f"store URI {uri!r}: invalid prefix {prefix!r}") from exc
        endpoint = endpoint or os.environ.get("ATTEST_S3_ENDPOINT") or None
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if object_lock_days is None and os.environ.get("ATTEST_S3_OBJECT_LOCK_DAYS"):
            raw = os.environ["ATTEST_S3_OBJECT_LOCK_DAYS"]
            try:
                object_lock_days = int(raw)
            except ValueError as exc:
                raise ConfigError(
                    f"ATTEST_S3_OBJECT_LOCK_DAYS={raw!r} is not a number of days"
                ) from exc
            if object_lock_days <= 0:
                raise ConfigError(f"ATTEST_S3_OBJECT_LOCK_DAYS={raw!r} must be positive")
        # A session of its own: boto3's default session caches the credentials it first
        # resolved, so a store built later in the same process would ignore a changed
        # environment (and the default session is not safe to share between threads).
        client = boto3.session.Session().client(
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
            prefix,
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

    def _where(self, key: str, version: str | None) -> dict[str, Any]:
        where: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if version is not None:
            where["VersionId"] = version
        return where

    def _head(self, key: str, version: str | None = None) -> HeadObjectOutputTypeDef | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.head_object(**self._where(key, version), ChecksumMode="ENABLED")
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in (
                "404",
                "NoSuchKey",
                "NoSuchVersion",
            ):
                return None
            raise StorageError(f"{self.object_uri(key)}: head failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"{self.uri}: head {key} failed: {exc}") from exc

    def stat(self, key: str, *, version: str | None = None) -> StoredObject | None:
        head = self._head(key, version)
        if head is None:
            return None
        # Objects uploaded by other tools may carry a composite (multipart) checksum or none;
        # the sha256 metadata that put_file writes is then the best available.
        sha = _server_sha256(head) or head.get("Metadata", {}).get("sha256", "")
        return StoredObject(
            key, int(head["ContentLength"]), sha, self.object_uri(key), _version_id(head)
        )

    def local_path(self, key: str) -> Path | None:
        return None

    def current(self, key: str) -> StoredObject | None:
        return self.stat(key)

    def versions(self, key: str) -> list[StoredObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(key)
        found: list[StoredObject] = []
        paginator = self.client.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Versions", []):
                    if item["Key"] != full:
                        continue
                    version = _version_id(item)
                    # The listing has no SHA-256: each version's own head says it.
                    head = self._head(key, version)
                    sha = ""
                    if head is not None:
                        sha = _server_sha256(head) or head.get("Metadata", {}).get("sha256", "")
                    found.append(
                        StoredObject(key, int(item["Size"]), sha, self.object_uri(key), version)
                    )
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(
                f"{self.uri}: listing the versions of {key} failed: {exc}"
            ) from exc
        # S3 lists a key's versions newest first (times can tie within a second).
        return found[::-1]

    def put_file(self, key: str, path: Path, sha256: str) -> StoredObject:
        size = path.stat().st_size
        if size > MAX_SINGLE_PUT:
            raise StorageError(f"{path}: {size} bytes is over the 5 GB single-PUT limit")
        existing = self.stat(key)
        if existing is not None:
            return same_or_raise(existing, sha256, self.object_uri(key))
        extra: dict[str, Any] = {}
        if self.object_lock_days:
            extra["ObjectLockMode"] = "COMPLIANCE"
            extra["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                days=self.object_lock_days
            )
        created = self._put_new(key, path, size, sha256, extra)
        if created is None:
            # Another writer created the key between our HEAD and our PUT.
            existing = self.stat(key)
            if existing is None:
                raise StorageError(
                    f"{self.object_uri(key)}: conditional put refused, yet no object"
                )
            return same_or_raise(existing, sha256, self.object_uri(key))
        # Verify against the checksum the server computed, never our own metadata, and of the
        # very version this PUT created (another could be current already).
        version = created or None
        head = self._head(key, version)
        server_sha = _server_sha256(head) if head is not None else None
        if head is None or server_sha != sha256 or int(head["ContentLength"]) != size:
            got = (
                "no object"
                if head is None
                else f"{head['ContentLength']} bytes sha256 {server_sha}"
            )
            raise DigestMismatch(
                f"{self.object_uri(key)}: server reports {got}, "
                f"expected {size} bytes sha256 {sha256}"
            )
        return StoredObject(key, size, sha256, self.object_uri(key), _version_id(head))

    def _put_new(
        self, key: str, path: Path, size: int, sha256: str, extra: dict[str, Any]
    ) -> str | None:
        """PUT only if the key does not exist yet: the version it created ("" in a bucket
        without versions), or None if the server says the key exists."""
        from botocore.exceptions import BotoCoreError, ClientError

        content_type = (
            "application/warc" if key.endswith(".warc.gz") else "application/octet-stream"
        )
        try:
            with open(path, "rb") as body:
                response = self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=body,
                    ContentLength=size,
                    ContentType=content_type,
                    ChecksumAlgorithm="SHA256",
                    # The server recomputes this and refuses the PUT (BadDigest) if it differs.
                    ChecksumSHA256=_b64(sha256),
                    Metadata={"sha256": sha256},
                    # Conditional create: the server refuses (412) if the key appeared since
                    # our HEAD, so two writers can never replace each other's object.
                    IfNoneMatch="*",
                    **extra,
                )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                return None
            raise StorageError(f"{self.uri}: put {key} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"{self.uri}: put {key} failed: {exc}") from exc
        return _version_id(response) or ""

    def open(self, key: str, *, version: str | None = None) -> BinaryIO:
        resp = self._call(f"get {key}", self.client.get_object, **self._where(key, version))
        return cast(BinaryIO, resp["Body"])

    def _get_range(self, key: str, offset: int, length: int, version: str | None) -> Any:
        return self._call(
            f"get {key} bytes {offset}+{length}" + (f" (version {version})" if version else ""),
            self.client.get_object,
            **self._where(key, version),
            Range=f"bytes={offset}-{offset + length - 1}",
        )

    def read_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> bytes:
        if length <= 0:
            return b""
        data: bytes = self._get_range(key, offset, length, version)["Body"].read()
        return checked_range(data, self.object_uri(key), offset, length)

    def open_range(
        self, key: str, offset: int, length: int, *, version: str | None = None
    ) -> BinaryIO:
        if length <= 0:
            import io

            return io.BytesIO(b"")
        body = self._get_range(key, offset, length, version)["Body"]
        return cast(BinaryIO, RangeReader(body, length, self.object_uri(key), offset))

    def require_legal_holds(self) -> None:
        """:class:`HoldUnsupported`, naming the bucket, unless Object Lock is enabled on it."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self._object_lock:
            return
        unsupported = (
            f"bucket {self.bucket!r} ({self.uri}) does not have Object Lock enabled, so it "
            f"cannot hold objects: legal holds need a bucket created with Object Lock"
        )
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ObjectLockConfigurationNotFoundError", "InvalidRequest"):
                raise HoldUnsupported(unsupported) from exc
            raise StorageError(
                f"{self.uri}: reading the bucket's Object Lock configuration failed: {code or exc}"
            ) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(
                f"{self.uri}: reading the bucket's Object Lock configuration failed: {exc}"
            ) from exc
        if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise HoldUnsupported(unsupported)
        self._object_lock = True

    def set_legal_hold(self, key: str, *, on: bool = True, version: str | None = None) -> LegalHold:
        """Set the legal hold of the key's ``version`` (default: current), then read it back."""
        from botocore.exceptions import BotoCoreError, ClientError

        self.require_legal_holds()
        head = self._head(key, version)
        if head is None:
            what = f" version {version}" if version else ""
            raise NotFound(f"{self.object_uri(key)}{what}: no such object in the store")
        version = _version_id(head)
        previous = head.get("ObjectLockLegalHoldStatus") or "OFF"
        status: Literal["ON", "OFF"] = "ON" if on else "OFF"
        where = self._where(key, version)
        self._call(
            f"legal hold {status} on {key}",
            self.client.put_object_legal_hold,
            LegalHold={"Status": status},
            **where,
        )
        try:
            found = self.client.get_object_legal_hold(**where)["LegalHold"].get("Status", "OFF")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchObjectLegalHold":
                code = exc.response.get("Error", {}).get("Code", "")
                raise StorageError(
                    f"{self.object_uri(key)}: reading the legal hold back failed: {code or exc}"
                ) from exc
            found = "OFF"
        except BotoCoreError as exc:
            raise StoreUnavailable(
                f"{self.object_uri(key)}: reading the legal hold back failed: {exc}"
            ) from exc
        if found != status:
            raise StorageError(
                f"{self.object_uri(key)} (version {version}): the store reports legal hold "
                f"{found} after it was set {status}"
            )
        return LegalHold(key, self.object_uri(key), version, found, previous)

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
