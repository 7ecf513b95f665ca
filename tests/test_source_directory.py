"""DirectorySource (a plain directory read as it is) and open_source's choice of source."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from podium.errors import SourceError
from podium.source import DirectorySource, GitSource, open_source


@pytest.fixture(autouse=True)
def no_user_git_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Git commands ignore the user's and the system's configuration."""
    (tmp_path / "gitconfig").write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A plain directory with a config file and a workflow in a sub-directory."""
    root = tmp_path / "desired"
    (root / "workflows").mkdir(parents=True)
    (root / "podium.yaml").write_text("notify: {}\n")
    (root / "workflows" / "deploy.yaml").write_text("version: 1\n")
    return root


def test_revision_changes_only_when_content_changes(tree: Path) -> None:
    """The revision is a stable "dir:" hash that moves when a file's content changes."""
    source = DirectorySource(tree)
    first = source.fetch()
    assert first.ok and first.changed and first.revision is not None
    assert first.revision.startswith("dir:")
    unchanged = source.fetch()
    assert not unchanged.changed and unchanged.revision == first.revision
    (tree / "workflows" / "deploy.yaml").write_text("version: 2\n")
    edited = source.fetch()
    assert edited.changed and edited.revision != first.revision
    assert source.remote_revision() == edited.revision
    (tree / "workflows" / "deploy.yaml").write_text("version: 1\n")
    assert source.fetch().revision == first.revision


def test_snapshot_lists_and_reads_the_files_it_hashed(tree: Path) -> None:
    """A snapshot lists regular files sorted and reads the content its revision was made from."""
    (tree / "link.yaml").symlink_to(tree / "podium.yaml")
    source = DirectorySource(tree)
    revision = source.fetch().revision
    assert revision is not None
    snap = source.snapshot(revision)
    assert snap.revision == revision
    assert snap.files() == ["podium.yaml", "workflows/deploy.yaml"]
    assert snap.read("./workflows/deploy.yaml") == b"version: 1\n"
    assert snap.size("podium.yaml") == len("notify: {}\n")
    assert snap.exists("podium.yaml") and not snap.exists("missing.yaml")
    with pytest.raises(FileNotFoundError):
        snap.read("missing.yaml")
    (tree / "workflows" / "deploy.yaml").write_text("edited\n")
    assert snap.read("workflows/deploy.yaml") == b"version: 1\n"
    assert source.snapshot(revision) is snap
    assert source.fetch().changed
    with pytest.raises(SourceError, match="has changed"):
        source.snapshot(revision)


def test_history_is_absent_and_resolve_knows_only_the_current_revision(tree: Path) -> None:
    """last_change is None; resolve accepts HEAD or the current revision; commit is a stand-in."""
    source = DirectorySource(tree)
    revision = source.fetch().revision
    assert revision is not None
    assert source.last_change(revision, ["podium.yaml"]) is None
    assert source.resolve("HEAD") == revision == source.resolve(revision)
    with pytest.raises(SourceError):
        source.resolve("main")
    commit = source.commit(revision)
    assert commit.sha == revision
    assert (commit.author_name, commit.committer_name, commit.committer_email) == ("", "", "")


def test_checkout_copies_the_tree_and_remove_deletes_it(tree: Path, tmp_path: Path) -> None:
    """checkout copies the directory to dest (later edits do not leak in); removal cleans up."""
    source = DirectorySource(tree)
    revision = source.fetch().revision
    assert revision is not None
    dest = tmp_path / "checkouts" / "run-1"
    root = source.checkout(revision, dest)
    assert root == dest.absolute()
    (tree / "workflows" / "deploy.yaml").write_text("later\n")
    assert (root / "workflows" / "deploy.yaml").read_text() == "version: 1\n"
    source.remove_checkout(dest)
    assert not dest.exists()
    source.remove_checkout(dest)


def test_checkout_inside_the_directory_does_not_copy_itself(tree: Path) -> None:
    """A destination below the source directory is left out of its own copy."""
    source = DirectorySource(tree)
    revision = source.fetch().revision
    assert revision is not None
    root = source.checkout(revision, tree / ".podium" / "run-1")
    assert (root / "podium.yaml").is_file()
    assert not (root / ".podium" / "run-1").exists()


def test_missing_directory_is_a_fetch_error(tmp_path: Path) -> None:
    """A directory that does not exist gives an error result once, not an exception."""
    source = DirectorySource(tmp_path / "absent")
    first, second = source.fetch(), source.fetch()
    assert first.error and first.outage_began and first.revision is None
    assert second.error and not second.outage_began
    assert source.remote_revision() is None


def test_open_source_reads_a_plain_directory_as_is(tree: Path, tmp_path: Path) -> None:
    """A local directory without Git becomes a DirectorySource rooted at its sub-path."""
    source = open_source(str(tree), tmp_path / "cache", None, "workflows")
    assert isinstance(source, DirectorySource)
    revision = source.fetch().revision
    assert revision is not None
    assert source.snapshot(revision).files() == ["deploy.yaml"]


def test_open_source_uses_git_for_repositories_and_urls(tree: Path, tmp_path: Path) -> None:
    """Work trees, bare repositories and URLs go through GitSource."""
    cache = tmp_path / "cache"
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "bare.git")], check=True)
    assert isinstance(open_source(str(tree), cache, None, ""), GitSource)
    assert isinstance(open_source(str(tmp_path / "bare.git"), cache, "main", ""), GitSource)
    assert isinstance(open_source("https://example.com/o/r.git", cache, None, ""), GitSource)
    assert isinstance(open_source("git@example.com:o/r.git", cache, None, "sub"), GitSource)


def test_open_source_refuses_a_missing_path(tmp_path: Path) -> None:
    """A local path that does not exist is a SourceError."""
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "nope"), tmp_path / "cache", None, "")
