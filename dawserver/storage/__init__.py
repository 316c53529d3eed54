"""Object storage for the server's files: one interface, a local-disk and an S3 backend.

Assets, bounces and exports are written through an :class:`ObjectStore`; which backend
serves it is configuration (``storage_url``: absent or a directory for local disk,
``s3://BUCKET/PREFIX`` for the S3 API, docs/storage.md). Plug-ins reach it only through
their context (:meth:`dawserver.context.PluginContext.asset_url`), never by import.
"""

from .base import ObjectNotFound, ObjectStore, StorageError, StorageUnavailable, part_file
from .local import LocalObjectStore
from .settings import StorageSettings, open_object_store, parse_storage_url

__all__ = ["LocalObjectStore", "ObjectNotFound", "ObjectStore", "StorageError",
           "StorageSettings", "StorageUnavailable", "open_object_store", "parse_storage_url",
           "part_file"]
