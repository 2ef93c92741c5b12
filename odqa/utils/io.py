"""Atomic writes (a crash never leaves a half-written index, model or predictions file) and the readers of
JSON, JSONL and CSV whose errors name the file and the line."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    The file ends up with the permissions of a normally created one (the user's umask), not the 0600
    of the temporary file it was renamed from.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.<pid>.*.tmp`` folders left next to ``path`` by builds whose process is gone.

    A build killed midway (Ctrl-C, out of memory) leaves its temporary folder behind; the next build
    into the same place removes it. Folders of builds still running are left alone.
    """
    path = Path(path)
    removed = []
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        pid = candidate.name[len(path.name) + 2:].split(".", 1)[0]
        if candidate.is_dir() and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` (which may exist).

    Readers never see a half-written folder: it appears complete, in one rename. It and everything in
    it get the permissions of normally created files (the user's umask), not mkdtemp's 0700 or the 0600
    some writers use (transformers 5 writes model.safetensors so), so a shared cache stays readable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        umask = current_umask()
        for inner in tmp.rglob("*"):
            if not inner.is_symlink():
                os.chmod(inner, (0o777 if inner.is_dir() else 0o666) & ~umask)
        os.chmod(tmp, 0o777 & ~umask)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_free_folder(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to write into a folder that already holds files unless ``overwrite``: a one-line error, before any
    slow work, instead of silently replacing someone's model."""
    from odqa.errors import ConfigError

    folder = Path(path)
    if not overwrite and folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"{folder}: exists and is not empty; choose another folder or pass --overwrite.")


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write JSON atomically, keeping Korean readable (``ensure_ascii=False``)."""
    return write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, turning a syntax error into a message that names the file and position."""
    from odqa.errors import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}).") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; re-save it as UTF-8.") from None


def read_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines file (blank lines skipped); a bad line is named."""
    from odqa.errors import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    with path.open(encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {line_number} is not valid JSON ({err.msg}).") from None


def read_csv_rows(path: str | os.PathLike, required: str) -> Iterator[dict[str, Any]]:
    """Rows of a CSV/TSV as dicts of strings; the header must have the ``required`` column."""
    from odqa.errors import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if not reader.fieldnames or required not in reader.fieldnames:
            raise DataError(f"{path}: header {reader.fieldnames} has no {required!r} column.")
        yield from reader


def update_digest(digest, path: str | os.PathLike):
    """Stream a file into ``digest`` (a hashlib object) 1 MB at a time, without reading it whole; returns it."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes (weights files, datasets: what provenance records and checks use)."""
    import hashlib

    return update_digest(hashlib.sha256(), path).hexdigest()
