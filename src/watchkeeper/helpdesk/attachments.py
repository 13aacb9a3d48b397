"""Attachment storage: size limit, content type sniffed from the bytes (the declared type is
only recorded), files kept by their SHA-256 as <prefix>/<sha256> in the storage layer
(settings.STORAGES["attachments"]: DATA_DIR/attachments by default, an S3-compatible bucket
for several hosts), and responses that always download (never inline, never rendered as
HTML by a browser)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse

from watchkeeper.core.files import is_local, stored_files

# Magic numbers of the formats we recognise; anything else is text/plain when it decodes as
# UTF-8 without control characters, else application/octet-stream.
_MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
]
_MARKUP = re.compile(rb"^\s*(<!doctype html|<html|<head|<body|<script|<svg|<\?xml)", re.I)
# Types a browser could execute or render as a document: served as octet-stream.
_ACTIVE = {"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml",
           "application/xml", "text/javascript", "application/javascript"}


class AttachmentRefused(ValueError):
    pass


def sniff(data: bytes) -> str:
    head = data[:512]
    for magic, ctype in _MAGIC:
        if head.startswith(magic):
            return ctype
    if head[4:12] == b"ftypisom" or head[4:8] == b"ftyp":
        return "video/mp4"
    if _MARKUP.match(head):
        return "text/html"
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    if any(ord(ch) < 9 or 13 < ord(ch) < 32 for ch in text):
        return "application/octet-stream"
    return "text/plain"


def safe_filename(name: str | None) -> str:
    name = os.path.basename((name or "").replace("\\", "/")).strip()
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name)[:200]
    return name or "attachment.bin"


def storage():
    """The storage layer of stored files (core/files.py): a directory under DATA_DIR by
    default, an S3-compatible bucket for several hosts."""
    return stored_files()


def name_for(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}"


def root() -> Path:
    return Path(settings.DATA_DIR) / "attachments"


def path_for(sha256: str) -> Path:
    """Local storage only: the file's path on disk."""
    return Path(storage().path(name_for(sha256)))


def store(data: bytes) -> tuple[str, str]:
    """Write the bytes durably before the caller commits the row that names them; return
    (sha256, sniffed type). Content-addressed: the same bytes are stored once.

    Local storage: temp file, fsync, atomic rename (a crash leaves no half file under the
    real name). Object store: one PUT, which is atomic by itself."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if len(data) > limit:
        raise AttachmentRefused(f"{len(data)} bytes is over the {limit}-byte limit")
    digest = hashlib.sha256(data).hexdigest()
    store_ = storage()
    name = name_for(digest)
    if not is_local(store_):
        if not store_.exists(name):
            from django.core.files.base import ContentFile

            store_.save(name, ContentFile(data))
        return digest, sniff(data)
    target = Path(store_.path(name))
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return digest, sniff(data)


def served_type(content_type: str) -> str:
    return "application/octet-stream" if content_type in _ACTIVE else content_type


def response(attachment) -> FileResponse:
    store_ = storage()
    name = name_for(attachment.sha256)
    if not store_.exists(name):
        raise Http404("attachment file is missing")
    resp = FileResponse(store_.open(name, "rb"), as_attachment=True,
                        filename=attachment.filename,
                        content_type=served_type(attachment.content_type))
    resp["X-Content-Type-Options"] = "nosniff"
    resp["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp["Cache-Control"] = "private, no-store"
    return resp


def raw_mail_response(row) -> HttpResponse:
    """A kept received message (InboundMessage) as an .eml download."""
    data = row.raw_bytes()
    if not data:
        raise Http404("The message's bytes were dropped after the retention period.")
    resp = HttpResponse(data, content_type="message/rfc822")
    resp["Content-Disposition"] = f'attachment; filename="message-{row.pk}.eml"'
    resp["X-Content-Type-Options"] = "nosniff"
    return resp
