"""Sealed files in an S3-compatible object store (`VIGIL_FILES_URL=s3://bucket/prefix`).

One object per upload, laid out as a directory store's file: named by the file's random
token only (`<prefix>/<token[:2]>/<token>.vgf`, never the file's name), holding each
sealed chunk as a 4-byte length and the chunk. The store holds ciphertext only: the
sealing is done before anything reaches it (`store.documents.sealing`).

An upload is spooled to a temporary file (sealed chunks only) while it is read from the
network; its spool is committed in the row's transaction: sent in one request when small,
else as a multipart upload of `PART`-sized parts read from the spool one at a time, so
the file is never held whole in memory. A download streams the object's body and cuts
it into its sealed chunks as it arrives. An object is never overwritten: the upload asks
for it to be written only if no object has its name (`If-None-Match: *`), after a HEAD
that finds none. If the row's transaction then fails, the object is removed again in the
background (`S3Store.forget`), or, if that fails too, logged as `file.orphan_left`.

The client (aiobotocore) is made on first use and closed by `S3Store.close`. Credentials
come from the standard AWS chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
`AWS_PROFILE`, `~/.aws/config`, an instance or container role); the endpoint of a store
that is not AWS (MinIO, ...) from `VIGIL_S3_ENDPOINT_URL`, the region from
`VIGIL_S3_REGION` (or `AWS_REGION`).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import SessionFactory
from store.documents.sealing import CHUNK, NONCE, FileIntegrityError
from store.models import StoredFile

log = structlog.get_logger(__name__)

S3 = "s3"
PART = 8 * 2**20  # multipart parts (S3 wants at least 5 MiB for all but the last)
READ = 256 * 1024  # bytes asked of a download's body at a time
_LENGTH = 4
_LARGEST = CHUNK + NONCE + 16  # a sealed chunk: nonce, ciphertext, GCM tag
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class ObjectExists(Exception):
    """An object is already stored under this file's token: it is never overwritten."""


class FileStoreUnavailable(Exception):
    """The bucket did not answer, or refused a request: nothing was stored or read."""

    def __init__(self, error: BaseException) -> None:
        reason = _code(error) if isinstance(error, ClientError) else type(error).__name__
        super().__init__(f"the S3 file store failed ({reason})")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class _S3Spool:
    """An upload's sealed chunks in a temporary file, sent to the store on commit."""

    def __init__(self, store: S3Store, token: str) -> None:
        self._store = store
        self._token = token
        self._file: IO[bytes] = tempfile.TemporaryFile()
        self._stored = False

    def write(self, sealed: bytes) -> None:
        self._file.write(len(sealed).to_bytes(_LENGTH, "big") + sealed)

    async def commit(self, session: AsyncSession, *, file_id: int) -> None:
        try:
            self._file.seek(0)
            await self._store.put(self._token, self._file)
            self._stored = True
        finally:
            self._file.close()

    def discard(self) -> None:
        """Forget the upload; if its object was already stored (its row's transaction
        failed after), remove the object in the background."""
        self._file.close()
        if self._stored:
            self._stored = False
            self._store.forget_later(self._token)


class S3Store:
    """Sealed files as objects in an S3 bucket: `<prefix>/<token[:2]>/<token>.vgf`."""

    name = S3

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        retries: int = 3,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url or None
        self.region = region or None
        options: dict[str, Any] = {
            "connect_timeout": 10,
            "read_timeout": 60,
            "retries": {"max_attempts": retries, "mode": "standard"},
        }
        if self.endpoint_url:  # MinIO and friends: path-style, checksums only if required
            options |= {
                "s3": {"addressing_style": "path"},
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        self._config = AioConfig(**options)
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix})"

    def key(self, token: str) -> str:
        """The object's name: the token only (never the file's name)."""
        return f"{self.prefix}{token[:2]}/{token}.vgf"

    async def client(self) -> Any:
        """The S3 client, made on first use."""
        async with self._lock:
            if self._client is None:
                stack = contextlib.AsyncExitStack()
                self._client = await stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        config=self._config,
                    )
                )
                self._stack = stack
        return self._client

    async def check(self) -> None:
        """Reach the bucket with the configured credentials (raises botocore's errors)."""
        client = await self.client()
        await client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        """Finish removing orphans, then close the client."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    def spool(self, token: str) -> _S3Spool:
        return _S3Spool(self, token)

    async def exists(self, token: str) -> bool:
        client = await self.client()
        try:
            await client.head_object(Bucket=self.bucket, Key=self.key(token))
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise
        return True

    async def put(self, token: str, source: IO[bytes]) -> None:
        """Store a spool's content as the token's object, part by part; never over an
        object already there (raises `ObjectExists`)."""
        client = await self.client()
        key = self.key(token)
        try:
            if await self.exists(token):
                raise ObjectExists(key)
            data = source.read(PART)
            if len(data) < PART:
                await client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
                return
            await self._multipart(client, key, data, source)
        except ClientError as error:
            if _code(error) == "PreconditionFailed":
                raise ObjectExists(key) from None
            raise FileStoreUnavailable(error) from error
        except BotoCoreError as error:
            raise FileStoreUnavailable(error) from error

    async def _multipart(self, client: Any, key: str, data: bytes, source: IO[bytes]) -> None:
        started = await client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = started["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            while data:
                number = len(parts) + 1
                sent = await client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )
                parts.append({"ETag": sent["ETag"], "PartNumber": number})
                data = source.read(PART)
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def forget_later(self, token: str) -> None:
        """Remove, in the background, the object of an upload whose row was not written."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("file.orphan_left", storage=S3, token=token)
            return
        task = loop.create_task(self.forget(token))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def forget(self, token: str) -> None:
        """Remove the object of an upload whose row was not written (logged if not)."""
        try:
            client = await self.client()
            await client.delete_object(Bucket=self.bucket, Key=self.key(token))
        except (ClientError, BotoCoreError, OSError) as error:
            log.warning("file.orphan_left", storage=S3, token=token, error=type(error).__name__)
            return
        log.info("file.orphan_removed", storage=S3, token=token)

    async def destroy(self, token: str) -> None:
        """Delete a destroyed record's object (`FileStoreUnavailable` if the bucket fails)."""
        try:
            client = await self.client()
            await client.delete_object(Bucket=self.bucket, Key=self.key(token))
        except (ClientError, BotoCoreError) as error:
            raise FileStoreUnavailable(error) from error

    async def read_sealed(self, token: str) -> AsyncIterator[bytes]:
        """A stored file's sealed chunks, in order, cut from the object's body as it comes."""
        client = await self.client()
        try:
            answer = await client.get_object(Bucket=self.bucket, Key=self.key(token))
        except ClientError as error:
            if _code(error) in _MISSING:
                log.error("file.missing_from_store", storage=S3, token=token)
                raise FileIntegrityError("the file is not in the store") from None
            raise FileStoreUnavailable(error) from error
        except BotoCoreError as error:
            raise FileStoreUnavailable(error) from error
        buffer = bytearray()
        async with answer["Body"] as body:
            while True:
                try:
                    piece = await body.read(READ)
                except (TimeoutError, BotoCoreError) as error:
                    raise FileStoreUnavailable(error) from error
                if not piece:
                    break
                buffer += piece
                while len(buffer) >= _LENGTH:
                    size = int.from_bytes(buffer[:_LENGTH], "big")
                    if size > _LARGEST:
                        raise FileIntegrityError("a stored chunk is larger than any sealed chunk")
                    if len(buffer) < _LENGTH + size:
                        break
                    record = bytes(buffer[_LENGTH : _LENGTH + size])
                    del buffer[: _LENGTH + size]
                    yield record
        if buffer:
            raise FileIntegrityError("a stored file ends early")

    async def sealed_chunks(
        self, factory: SessionFactory, *, file: StoredFile
    ) -> AsyncIterator[bytes]:
        async for record in self.read_sealed(file.token):
            yield record

    async def keys(self) -> AsyncIterator[str]:
        """Every object under the prefix (the privacy check reads them all)."""
        client = await self.client()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        async for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"])

    async def raw(self, key: str, *, window: int) -> AsyncIterator[bytes]:
        """An object's bytes as stored, `window` at a time."""
        client = await self.client()
        answer = await client.get_object(Bucket=self.bucket, Key=key)
        async with answer["Body"] as body:
            async for piece in body.iter_chunks(window):
                yield piece
