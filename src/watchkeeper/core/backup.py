"""`watchkeeper backup` / `watchkeeper restore`: everything a deployment needs to come back.

A backup is a directory:

    manifest.json          format, time, database engine, and sha256 + size of every file
    database.sqlite3       SQLite: a consistent online copy (SQLite's backup API)
    database.pgdump        PostgreSQL: pg_dump --format=custom (one consistent snapshot)
    keys/...               the secret key, the master key (encrypted secrets are useless
                           without it) and the command-signing key, when they are files
    files/attachments/...  every stored file (the storage layer: local or object store)

Order makes it consistent while the platform runs: the database snapshot is taken first,
then the files are copied. A stored file is written (and fsynced) before the row naming it
commits, and stored files are never rewritten (content-addressed), so every file a row of
the snapshot names is already there when the copy starts.

`restore` verifies every checksum of the manifest before it changes anything, then puts
the keys, the database and the files back; it refuses to overwrite a database that holds
tables unless `force` is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection

FORMAT = 1
MANIFEST = "manifest.json"


class BackupError(Exception):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def key_files() -> dict[str, Path]:
    """Keys kept as files (a key given in the environment is the operator's to keep)."""
    keys = {}
    data = Path(settings.DATA_DIR)
    for name in ("secret_key", "master_key"):
        if (data / name).is_file():
            keys[f"keys/{name}"] = data / name
    signer = Path(settings.SIGNER_KEY_FILE)
    if signer.is_file():
        keys["keys/signer/" + signer.name] = signer
    return keys


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install "
                          "postgresql-client)")
    return path


def _engine() -> str:
    return connection.vendor  # "sqlite" or "postgresql"


def _pg() -> tuple[list[str], dict[str, str]]:
    """libpq arguments and environment for the database Django uses now."""
    db = connection.settings_dict
    args = [f"--dbname={db['NAME']}"]
    if db.get("HOST"):
        args.append(f"--host={db['HOST']}")
    if db.get("PORT"):
        args.append(f"--port={db['PORT']}")
    if db.get("USER"):
        args.append(f"--username={db['USER']}")
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return args, env


def dump_database(target_dir: Path) -> str:
    """A consistent copy of the live database into target_dir; returns the file name."""
    if _engine() == "sqlite":
        target = target_dir / "database.sqlite3"
        connection.ensure_connection()
        dest = sqlite3.connect(target)
        try:
            connection.connection.backup(dest)  # online, consistent, pages copied in steps
        finally:
            dest.close()
        return target.name
    if _engine() == "postgresql":
        target = target_dir / "database.pgdump"
        args, env = _pg()
        result = subprocess.run(  # noqa: S603 - fixed argv, our own database
            [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
             f"--file={target}", *args], capture_output=True, text=True, check=False, env=env)
        if result.returncode:
            raise BackupError(f"pg_dump failed: {result.stderr.strip()[:500]}")
        return target.name
    raise BackupError(f"backups of {_engine()} databases are not supported")


def _stored_files():
    """(name, storage) of every stored file, walking the storage layer."""
    from .files import stored_files

    store = stored_files()

    def walk(prefix: str):
        try:
            dirs, files = store.listdir(prefix)
        except FileNotFoundError:
            return
        for name in files:
            if not name.startswith(".incoming-"):
                yield f"{prefix}/{name}".lstrip("/")
        for sub in dirs:
            yield from walk(f"{prefix}/{sub}".lstrip("/"))

    return store, walk("")


def backup(output: Path, *, out=None) -> dict:
    """Write a backup directory at `output` (must not exist); returns the manifest."""
    say = out or (lambda text: None)
    output = Path(output)
    if output.exists():
        raise BackupError(f"{output} already exists; give a new directory")
    work = output.with_name(output.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    started = datetime.now(UTC)
    say(f"backup: database ({_engine()}) ...")
    db_file = dump_database(work)
    files: dict[str, dict] = {}
    files[db_file] = {"sha256": _sha256(work / db_file), "size": (work / db_file).stat().st_size}
    for rel, src in key_files().items():
        dest = work / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        os.chmod(dest, 0o600)
        files[rel] = {"sha256": _sha256(dest), "size": dest.stat().st_size}
    store, names = _stored_files()
    count = 0
    for name in names:
        rel = f"files/attachments/{name}"
        dest = work / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with store.open(name, "rb") as src, dest.open("wb") as fh:
            shutil.copyfileobj(src, fh, 1 << 20)
        files[rel] = {"sha256": _sha256(dest), "size": dest.stat().st_size}
        count += 1
    say(f"backup: {count} stored file(s), {len(key_files())} key file(s)")
    manifest = {"format": FORMAT, "created_at": started.isoformat(),
                "finished_at": datetime.now(UTC).isoformat(), "engine": _engine(),
                "database": db_file, "files": files}
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    _fsync_tree(work)
    os.replace(work, output)  # the backup exists under its name only once it is whole
    return manifest


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def verify(source: Path) -> dict:
    """The manifest, once every file it lists is there with its size and checksum."""
    source = Path(source)
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise BackupError(f"{source} has no {MANIFEST}: not a Watchkeeper backup") from exc
    except ValueError as exc:
        raise BackupError(f"{source / MANIFEST} is not valid JSON") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    problems = []
    for rel, meta in sorted(manifest["files"].items()):
        path = source / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            problems.append(f"{rel}: unsafe path")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["size"] or _sha256(path) != meta["sha256"]:
            problems.append(f"{rel}: checksum mismatch")
    if problems:
        raise BackupError("the backup does not match its manifest: " + "; ".join(problems[:10])
                          + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
    return manifest


def restore(source: Path, *, force: bool = False, out=None) -> dict:
    """Verify, then put back keys, database and stored files. Returns the manifest."""
    say = out or (lambda text: None)
    source = Path(source)
    manifest = verify(source)
    say(f"restore: manifest verified ({len(manifest['files'])} files)")
    if manifest["engine"] != _engine():
        raise BackupError(f"the backup holds a {manifest['engine']} database; this "
                          f"deployment is configured for {_engine()}")
    if not force and not database_is_empty():
        raise BackupError("the database is not empty; restore into an empty data directory "
                          "and database, or pass --force to replace what they hold")
    # Keys a fresh data directory generated at start are replaced: the data they would
    # protect is what is restored now.
    _restore_keys(source, manifest)
    _restore_database(source, manifest)
    from django.core.files.base import File

    from .files import stored_files

    store = stored_files()
    count = 0
    for rel in manifest["files"]:
        if not rel.startswith("files/attachments/"):
            continue
        name = rel[len("files/attachments/"):]
        if store.exists(name):
            continue  # content-addressed: the same name is the same bytes
        with (source / rel).open("rb") as fh:
            store.save(name, File(fh, name=name))
        count += 1
    say(f"restore: database, keys and {count} stored file(s) restored")
    return manifest


def database_is_empty() -> bool:
    if _engine() == "sqlite":
        target = Path(settings.DATABASES["default"]["NAME"])
        if not target.exists() or not target.stat().st_size:
            return True
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    connection.close()
    return not tables


def _restore_keys(source: Path, manifest: dict) -> None:
    targets = {"keys/secret_key": Path(settings.DATA_DIR) / "secret_key",
               "keys/master_key": Path(settings.DATA_DIR) / "master_key"}
    signer = Path(settings.SIGNER_KEY_FILE)
    for rel in manifest["files"]:
        if rel.startswith("keys/signer/"):
            targets[rel] = signer
    for rel, target in targets.items():
        if rel not in manifest["files"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{target.name}.restore")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write((source / rel).read_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)


def _restore_database(source: Path, manifest: dict) -> None:
    dump = source / manifest["database"]
    connection.close()
    if manifest["engine"] == "sqlite":
        target = Path(settings.DATABASES["default"]["NAME"])
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        tmp = target.with_name(f".{target.name}.restore")
        shutil.copyfile(dump, tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return
    args, env = _pg()
    argv = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
            "--clean", "--if-exists", *args, str(dump)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False,  # noqa: S603
                            env=env)
    if result.returncode:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()[:500]}")
