"""Snapshot.digest: the sha256 of a file's content, equal to hashlib's, and for a large Git
blob computed from a stream rather than the whole content in memory."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from podium.source import DirectorySource, GitSource
from podium.source.memory import MemorySnapshot
from tests.gitrepo import GitRepo, isolate

SMALL = b"version: 1\n"
MEDIUM = os.urandom(3 * 1024 * 1024 + 17)
LARGE_SIZE = 16 * 1024 * 1024


@pytest.fixture
def repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> GitRepo:
    """A repository holding a small file and a multi-megabyte binary one."""
    isolate(monkeypatch, tmp_path)
    repo = GitRepo(tmp_path / "git")
    (repo.work / "data").mkdir()
    (repo.work / "data" / "medium.bin").write_bytes(MEDIUM)
    repo.commit({"workflows/deploy.yaml": SMALL.decode()})
    return repo


def git_snapshot(repo: GitRepo, tmp_path: Path) -> tuple[GitSource, str]:
    """A fetched source of ``repo`` and its revision."""
    source = GitSource(repo.url, tmp_path / "cache")
    revision = source.fetch().revision
    assert revision is not None
    return source, revision


def test_git_digest_equals_hashlib_for_small_and_large_files(repo: GitRepo, tmp_path: Path) -> None:
    """digest() of a small and of a 3 MB file equals hashlib.sha256 of their content."""
    source, revision = git_snapshot(repo, tmp_path)
    snap = source.snapshot(revision)
    assert snap.digest("workflows/deploy.yaml") == hashlib.sha256(SMALL).hexdigest()
    assert snap.digest("./data/medium.bin") == hashlib.sha256(MEDIUM).hexdigest()
    assert snap.read("data/medium.bin") == MEDIUM
    with pytest.raises(FileNotFoundError):
        snap.digest("data/missing.bin")


def test_git_digest_of_prefetched_content_matches(repo: GitRepo, tmp_path: Path) -> None:
    """A file already read in a batch gives the same digest as one hashed on demand."""
    source, revision = git_snapshot(repo, tmp_path)
    snap = source.snapshot(revision)
    snap.prefetch(["workflows/deploy.yaml"], max_bytes=1 << 20)
    assert snap.digest("workflows/deploy.yaml") == hashlib.sha256(SMALL).hexdigest()


@pytest.mark.timeout(120)
def test_git_digest_of_a_large_blob_does_not_hold_it_in_memory(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Hashing a 16 MB blob allocates a small fraction of its size (tracemalloc peak)."""
    chunk = os.urandom(1024 * 1024)
    expected = hashlib.sha256()
    with (repo.work / "data" / "large.bin").open("wb") as handle:
        for index in range(LARGE_SIZE // len(chunk)):
            piece = index.to_bytes(4, "big") + chunk[4:]
            handle.write(piece)
            expected.update(piece)
    repo.commit()
    source, revision = git_snapshot(repo, tmp_path)
    snap = source.snapshot(revision)
    assert snap.size("data/large.bin") == LARGE_SIZE
    tracemalloc.start()
    try:
        digest = snap.digest("data/large.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest == expected.hexdigest()
    assert peak < LARGE_SIZE // 4


def test_directory_and_memory_digests_equal_hashlib(tmp_path: Path) -> None:
    """A plain directory's and an in-memory snapshot's digest equal hashlib's."""
    (tmp_path / "d" / "data").mkdir(parents=True)
    (tmp_path / "d" / "data" / "medium.bin").write_bytes(MEDIUM)
    source = DirectorySource(tmp_path / "d")
    revision = source.fetch().revision
    assert revision is not None
    expected = hashlib.sha256(MEDIUM).hexdigest()
    assert source.snapshot(revision).digest("data/medium.bin") == expected
    memory = MemorySnapshot({"data/medium.bin": MEDIUM, "a.txt": "a\n"})
    assert memory.digest("data/medium.bin") == expected
    assert memory.digest("a.txt") == hashlib.sha256(b"a\n").hexdigest()
    for snap in (source.snapshot(revision), memory):
        with pytest.raises(FileNotFoundError):
            snap.digest("missing.bin")
