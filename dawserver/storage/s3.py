"""The S3 object store (aiobotocore): streamed multipart uploads, presigned GET URLs.

Objects live under ``s3://BUCKET/PREFIX/<key>``. A write below ``multipart_threshold``
is one ``PutObject``; above it, a multipart upload of ``part_size`` parts (``concurrency``
of them in flight), aborted when
anything fails, so no half-written object is ever visible. Connection failures and the
server's 5xx answers, its throttling and its timeouts are :class:`StorageUnavailable`
(the HTTP API answers 503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import aiohttp
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .base import (
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StorageUnavailable,
    check_key,
    check_prefix,
    content_disposition,
)

log = logging.getLogger(__name__)

MIB = 1 << 20
#: S3's smallest part (except the last).
MIN_PART = 5 * MIB
_MISSING = {"404", "NoSuchKey", "NotFound"}
#: Codes of a store that is busy or timed out (botocore retries them too; S3 answers
#: ``RequestTimeout`` with a 400, throttling often with a 400 or 429): worth retrying.
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
              "RequestTimeoutException", "PriorRequestNotComplete", "Throttling",
              "ThrottlingException", "RequestThrottled", "TooManyRequestsException",
              "RequestLimitExceeded", "BandwidthLimitExceeded"}


class S3ObjectStore(ObjectStore):
    """Objects in an S3 bucket under a prefix.

    Parameters
    ----------
    bucket, prefix:
        Where objects go (``prefix`` may be empty).
    endpoint_url:
        The S3 API's address (None: AWS by region).
    region, access_key_id, secret_access_key:
        Credentials (None: botocore's usual chain, e.g. ``AWS_ACCESS_KEY_ID``).
    multipart_threshold, part_size:
        Bytes above which an upload is multipart, and its part size (at least 5 MiB).
    connect_timeout, read_timeout, max_attempts:
        How long to wait for the store and how often to try a call.
    concurrency:
        Parts of one multipart upload sent at once (each held in memory meanwhile).
    """

    redirects = True

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, multipart_threshold: int = 8 * MIB,
                 part_size: int = 8 * MIB, connect_timeout: float = 3.0,
                 read_timeout: float = 30.0, max_attempts: int = 2,
                 concurrency: int = 4) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size {part_size} is below S3's 5 MiB minimum")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.multipart_threshold, self.part_size = multipart_threshold, part_size
        self.concurrency = max(1, concurrency)
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url, "region_name": region or "us-east-1",
            "aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key,
            "config": Config(signature_version="s3v4", s3={"addressing_style": "path"},
                             connect_timeout=connect_timeout, read_timeout=read_timeout,
                             retries={"max_attempts": max_attempts, "mode": "standard"})}
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3ObjectStore(s3://{self.bucket}/{self.prefix})"

    async def start(self) -> None:
        """Open the client."""
        if self._stack is not None:
            raise StorageError("the S3 object store is already started")
        self._stack = contextlib.AsyncExitStack()
        self._client = await self._stack.enter_async_context(
            get_session().create_client("s3", **self._client_args))

    async def stop(self) -> None:
        """Close the client."""
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._client = None

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @property
    def client(self) -> Any:
        """The open aiobotocore client."""
        if self._client is None:
            raise StorageError("the S3 object store is not started; use 'async with store'")
        return self._client

    async def create_bucket(self) -> None:
        """Create the bucket if it is missing (set-up and tests)."""
        async with _errors(self.bucket):
            with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou,
                                     self.client.exceptions.BucketAlreadyExists):
                await self.client.create_bucket(Bucket=self.bucket)

    # -- writes --------------------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes] | bytes, *,
                  content_type: str = "application/octet-stream") -> int:
        """One PutObject below the threshold, else a multipart upload."""
        name = self._key(key)
        if isinstance(chunks, bytes):
            async with _errors(key):
                await self.client.put_object(Bucket=self.bucket, Key=name, Body=chunks,
                                             ContentType=content_type)
            return len(chunks)
        buffer = bytearray()
        source = aiter(chunks)
        async for chunk in source:
            buffer += chunk
            if len(buffer) > self.multipart_threshold:
                return await self._multipart(name, key, buffer, source, content_type)
        async with _errors(key):
            await self.client.put_object(Bucket=self.bucket, Key=name, Body=bytes(buffer),
                                         ContentType=content_type)
        return len(buffer)

    async def _multipart(self, name: str, key: str, buffer: bytearray,
                         source: AsyncIterator[bytes], content_type: str) -> int:
        async with _errors(key):
            upload = await self.client.create_multipart_upload(
                Bucket=self.bucket, Key=name, ContentType=content_type)
        upload_id, etags, size = upload["UploadId"], {}, 0
        slots = asyncio.Semaphore(self.concurrency)  # parts in flight (and in memory)

        async def send(number: int, body: bytes) -> None:
            try:
                async with _errors(key):
                    answer = await self.client.upload_part(
                        Bucket=self.bucket, Key=name, UploadId=upload_id,
                        PartNumber=number, Body=body)
                etags[number] = answer["ETag"]
            finally:
                slots.release()

        try:
            try:
                async with asyncio.TaskGroup() as group:
                    more, number = True, 0
                    while more or buffer:
                        while more and len(buffer) < self.part_size:  # source errors: its own
                            chunk = await anext(source, None)
                            if chunk is None:
                                more = False
                            else:
                                buffer += chunk
                        if not buffer:
                            break
                        body = bytes(buffer[:self.part_size])
                        del buffer[:self.part_size]
                        size += len(body)
                        number += 1
                        await slots.acquire()
                        group.create_task(send(number, body))
            except BaseExceptionGroup as group_error:  # the first failure, as itself
                raise group_error.exceptions[0] from None
            parts = [{"ETag": etags[n], "PartNumber": n} for n in sorted(etags)]
            async with _errors(key):
                await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id,
                    MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                         UploadId=upload_id)
            raise
        log.debug("multipart upload of %s: %d parts, %d bytes", key, len(parts), size)
        return size

    # -- reads ---------------------------------------------------------------------------

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        """GetObject's body in chunks."""
        async with _errors(key):
            answer = await self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        async with answer["Body"] as body, _errors(key):
            async for chunk in body.iter_chunks(1 << 20):
                yield chunk

    async def exists(self, key: str) -> bool:
        """HeadObject."""
        try:
            async with _errors(key):
                await self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        """DeleteObject."""
        async with _errors(key):
            await self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def keys(self, prefix: str) -> list[str]:
        """ListObjectsV2 over every page."""
        check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        found: list[str] = []
        async with _errors(prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                found += [item["Key"][strip:] for item in page.get("Contents", [])]
        return sorted(found)

    async def presigned_url(self, key: str, expires_s: int, *, filename: str = "",
                            content_type: str = "") -> str:
        """A SigV4 presigned GetObject URL (the store checks it; we never see the GET)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        if content_type:
            params["ResponseContentType"] = content_type
        return await self.client.generate_presigned_url("get_object", Params=params,
                                                        ExpiresIn=int(expires_s))


@contextlib.asynccontextmanager
async def _errors(key: str) -> AsyncIterator[None]:
    """Turn botocore's errors into :class:`ObjectNotFound` or :class:`StorageUnavailable`."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING:
            raise ObjectNotFound(f"no object {key!r}") from None
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status >= 500 or status == 429 or code in _TRANSIENT:
            raise StorageUnavailable(f"object storage failed on {key!r} ({code}); "
                                     "try again shortly") from exc
        raise StorageError(f"object storage refused {key!r}: {code} "
                           f"{error.get('Message', '')}".strip()) from exc
    except (BotoCoreError, aiohttp.ClientError, OSError) as exc:  # refused, timeouts, DNS
        raise StorageUnavailable(f"object storage cannot be reached ({exc}); try again "
                                 "shortly") from exc
