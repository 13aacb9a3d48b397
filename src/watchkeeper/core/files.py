"""The storage layer of stored files (attachments and any other file an app keeps).

settings.STORAGES["attachments"]: Django's file system storage under DATA_DIR/attachments by
default; an S3-compatible bucket through django-storages when WATCHKEEPER_STORAGE_URL is
s3://..., so web and mail-in on different hosts see the same files. Names are
content-addressed (`<sha256[:2]>/<sha256>`): the same bytes are one file, never rewritten.
"""

from __future__ import annotations


def stored_files():
    from django.core.files.storage import storages

    return storages["attachments"]


def is_local(store) -> bool:
    from django.core.files.storage import FileSystemStorage

    return isinstance(store, FileSystemStorage)
