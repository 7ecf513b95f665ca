"""open_source refuses what it cannot read safely: an empty repository, and a sub-path that
leaves the repository (``..``, absolute, or through a symbolic link)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.errors import SourceError
from podium.source import DirectorySource, GitSource, open_source
from tests.gitrepo import GitRepo, isolate


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Git runs without the user's configuration."""
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A plain directory with a workflow, next to a directory holding something private."""
    root = tmp_path / "desired"
    (root / "workflows").mkdir(parents=True)
    (root / "workflows" / "deploy.yaml").write_text("version: 1\n")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "id_rsa").write_text("not for tasks\n")
    return root


def one_line_error(repo: str, cache: Path, path: str) -> str:
    """The SourceError open_source raises, checked to be one line."""
    with pytest.raises(SourceError) as caught:
        open_source(repo, cache, None, path)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("path", ["../private", "workflows/../../private", "/etc", "//etc"])
def test_sub_path_outside_a_directory_is_refused(tree: Path, tmp_path: Path, path: str) -> None:
    """A sub-path climbing out or given as an absolute path is a one-line SourceError."""
    assert path in one_line_error(str(tree), tmp_path / "cache", path)


@pytest.mark.parametrize("path", ["../other", "/srv/ops"])
def test_sub_path_outside_a_remote_repository_is_refused(tmp_path: Path, path: str) -> None:
    """The same holds for a URL, before anything is fetched."""
    one_line_error("https://example.com/o/r.git", tmp_path / "cache", path)


def test_sub_path_through_a_symlink_out_of_a_directory_is_refused(
    tree: Path, tmp_path: Path
) -> None:
    """A sub-path that is a symlink to a directory outside the source is refused."""
    (tree / "escape").symlink_to(tmp_path / "private", target_is_directory=True)
    message = one_line_error(str(tree), tmp_path / "cache", "escape")
    assert "symlink" in message


def test_sub_path_through_a_symlink_out_of_a_work_tree_is_refused(tmp_path: Path) -> None:
    """In a local Git work tree, a sub-path leading out through a symlink is refused too."""
    repo = GitRepo(tmp_path / "git")
    repo.commit({"README.md": "x\n"}, push=False)
    (tmp_path / "outside").mkdir()
    (repo.work / "wf").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert "symlink" in one_line_error(str(repo.work), tmp_path / "cache", "wf")


def test_sub_path_through_a_symlink_inside_is_accepted(tree: Path, tmp_path: Path) -> None:
    """A symlink that stays inside the source is fine."""
    (tree / "current").symlink_to(tree / "workflows", target_is_directory=True)
    source = open_source(str(tree), tmp_path / "cache", None, "current/")
    assert isinstance(source, DirectorySource)
    revision = source.fetch().revision
    assert revision is not None
    assert source.snapshot(revision).files() == ["deploy.yaml"]


def test_committed_symlink_sub_path_is_refused_at_checkout(tmp_path: Path) -> None:
    """A sub-path committed as a symlink out of the repository gives no files and no checkout."""
    repo = GitRepo(tmp_path / "git")
    (tmp_path / "outside").mkdir()
    (repo.work / "wf").symlink_to(tmp_path / "outside", target_is_directory=True)
    sha = repo.commit({"README.md": "x\n"})
    source = open_source(repo.url, tmp_path / "cache", None, "wf")
    assert isinstance(source, GitSource)
    assert source.fetch().revision == sha
    assert source.snapshot(sha).files() == []
    dest = tmp_path / "checkouts" / "run-1"
    with pytest.raises(SourceError, match="outside the repository"):
        source.checkout(sha, dest)
    assert not dest.exists()


@pytest.mark.parametrize("repo", ["", "   "])
def test_empty_repository_is_refused(
    tmp_path: Path, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty repository location is a one-line SourceError, not the current directory."""
    monkeypatch.chdir(tmp_path)
    assert "no repository" in one_line_error(repo, tmp_path / "cache", "")
