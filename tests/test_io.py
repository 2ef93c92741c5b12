"""Atomic writes: complete or absent, normal permissions, leftovers of killed builds cleaned."""
from __future__ import annotations

import os
import stat

import pytest

from odqa.utils.io import atomic_directory, remove_stale_temporaries, write_json


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_and_folders_get_the_users_umask(tmp_path, umask_022):
    path = write_json(tmp_path / "predictions.json", {"a": "b"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    with atomic_directory(tmp_path / "index") as tmp:
        (tmp / "meta.json").write_text("{}")
        (tmp / "model.safetensors").write_bytes(b"x")
        os.chmod(tmp / "model.safetensors", 0o600)  # as transformers 5 writes its weights
        (tmp / "shards").mkdir(mode=0o700)
    assert stat.S_IMODE((tmp_path / "index").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "index" / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "index" / "shards").stat().st_mode) == 0o755


def test_atomic_directory_replaces_or_leaves_nothing(tmp_path):
    target = tmp_path / "index"
    with atomic_directory(target) as tmp:
        (tmp / "v").write_text("1")
    with atomic_directory(target) as tmp:
        (tmp / "v").write_text("2")
    assert (target / "v").read_text() == "2"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "v").write_text("3")
            raise RuntimeError("killed midway")
    assert (target / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_stale_temporaries_of_dead_builds_are_removed(tmp_path):
    dead = tmp_path / ".index.999999999.x1.tmp"
    alive = tmp_path / f".index.{os.getpid()}.x2.tmp"
    other = tmp_path / ".other.999999999.x3.tmp"
    for d in (dead, alive, other):
        d.mkdir()
    assert remove_stale_temporaries(tmp_path / "index") == [dead]
    assert not dead.exists() and alive.exists() and other.exists()
    with atomic_directory(tmp_path / "other") as tmp:
        (tmp / "v").write_text("1")
    assert not other.exists()
