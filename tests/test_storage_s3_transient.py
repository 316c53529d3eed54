"""An S3 store that is busy or timed out (S3's ``RequestTimeout`` is a 400, throttling
a 400 or 429) is unavailable for now: the HTTP API answers 503 with ``Retry-After``,
as for a 5xx; a store refusing the server's settings stays without it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from dawserver.errors import storage_failed
from dawserver.storage import StorageError, StorageUnavailable
from dawserver.storage.s3 import S3ObjectStore


class Refusing:
    """An S3 client whose every call is answered with one error."""

    def __init__(self, code: str, status: int) -> None:
        self.answer = {"Error": {"Code": code, "Message": "test"},
                       "ResponseMetadata": {"HTTPStatusCode": status}}

    async def put_object(self, **params: Any) -> None:
        raise ClientError(self.answer, "PutObject")


async def _put(code: str, status: int) -> StorageError:
    store = S3ObjectStore("bucket")
    store._client = Refusing(code, status)
    with pytest.raises(StorageError) as caught:
        await store.put("assets/a", b"bytes")
    return caught.value


@pytest.mark.asyncio
@pytest.mark.parametrize(("code", "status"), [
    ("RequestTimeout", 400), ("Throttling", 400), ("TooManyRequests", 429),
    ("SlowDown", 503)])
async def test_a_busy_or_timed_out_store_is_unavailable_for_now(code: str, status: int
                                                                ) -> None:
    error = await _put(code, status)
    assert isinstance(error, StorageUnavailable)
    assert storage_failed(error).headers == {"Retry-After": "5"}


@pytest.mark.asyncio
async def test_a_store_refusing_the_settings_is_not_retried_soon() -> None:
    error = await _put("AccessDenied", 403)
    assert not isinstance(error, StorageUnavailable)
    assert storage_failed(error).headers == {}
