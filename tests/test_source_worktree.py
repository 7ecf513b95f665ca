"""uncommitted(): what a local work tree changes against the tracked commit (the files
``plan --repo .`` does not show), and nothing for remote, bare or plain sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.source import DirectorySource, GitSource, open_source
from tests.gitrepo import GitRepo, git, isolate


@pytest.fixture
def repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> GitRepo:
    """A work clone with workflows under ops/ and a file outside it, all committed."""
    isolate(monkeypatch, tmp_path)
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            ".gitignore": "*.tmp\n",
            "ops/workflows/a.yaml": "a: 1\n",
            "ops/workflows/b.yaml": "b: 1\n",
            "ops/podium.yaml": "notify: {}\n",
            "app/main.py": "print(1)\n",
        }
    )
    return repo


def local_source(repo: GitRepo, tmp_path: Path, path: str = "ops") -> GitSource:
    """The work clone opened the way `--repo .` opens it."""
    source = open_source(str(repo.work), tmp_path / "cache", None, path)
    assert isinstance(source, GitSource)
    return source


def test_clean_work_tree_has_nothing_uncommitted(repo: GitRepo, tmp_path: Path) -> None:
    """Right after a commit nothing differs, before or after a fetch."""
    source = local_source(repo, tmp_path)
    assert source.uncommitted() == []
    assert source.fetch().ok
    assert source.uncommitted() == []


def test_modified_staged_deleted_and_untracked_files_are_listed(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Edits, staged new files, deletions and untracked files below the sub-path are listed."""
    source = local_source(repo, tmp_path)
    assert source.fetch().ok
    repo.write({"ops/workflows/a.yaml": "a: 2\n", "ops/workflows/new.yaml": "n: 1\n"})
    git("add", "ops/workflows/new.yaml", cwd=repo.work)
    repo.write({"ops/workflows/b.yaml": None, "ops/draft.yaml": "d\n", "ops/scratch.tmp": "x"})
    repo.write({"app/main.py": "print(2)\n", "app/other.yaml": "o\n"})
    assert source.uncommitted() == [
        "draft.yaml",
        "workflows/a.yaml",
        "workflows/b.yaml",
        "workflows/new.yaml",
    ]
    assert source.uncommitted("workflows") == [
        "workflows/a.yaml",
        "workflows/b.yaml",
        "workflows/new.yaml",
    ]


def test_a_change_only_in_the_index_is_listed(repo: GitRepo, tmp_path: Path) -> None:
    """A staged edit whose work-tree file was put back still differs from the commit."""
    source = local_source(repo, tmp_path)
    repo.write({"ops/podium.yaml": "notify: {console: {}}\n"})
    git("add", "ops/podium.yaml", cwd=repo.work)
    repo.write({"ops/podium.yaml": "notify: {}\n"})
    assert source.uncommitted() == ["podium.yaml"]


def test_the_whole_repository_without_a_sub_path(repo: GitRepo, tmp_path: Path) -> None:
    """Without a sub-path, paths are from the repository root and cover every directory."""
    source = local_source(repo, tmp_path, path="")
    repo.write({"app/main.py": "print(2)\n", "ops/workflows/a.yaml": "a: 3\n"})
    assert source.uncommitted() == ["app/main.py", "ops/workflows/a.yaml"]
    assert source.uncommitted("app") == ["app/main.py"]


def test_work_tree_on_another_branch_differs_from_the_tracked_one(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Files committed on a checked-out branch other than the tracked one are listed too."""
    source = open_source(str(repo.work), tmp_path / "cache", "main", "ops")
    assert source.fetch().ok
    repo.switch("feature", create=True)
    repo.commit({"ops/workflows/a.yaml": "a: feature\n"}, push=False)
    assert source.uncommitted() == ["workflows/a.yaml"]


def test_paths_are_literal_not_patterns(repo: GitRepo, tmp_path: Path) -> None:
    """A sub-path with glob characters matches only itself."""
    repo.commit({"o*s/x.yaml": "x\n"})
    source = local_source(repo, tmp_path, path="o*s")
    repo.write({"ops/workflows/a.yaml": "a: 2\n", "o*s/x.yaml": "y\n"})
    assert source.uncommitted() == ["x.yaml"]


def test_bare_remote_and_plain_sources_have_nothing_uncommitted(
    repo: GitRepo, tmp_path: Path
) -> None:
    """A bare repository, a URL and a plain directory never report uncommitted files."""
    repo.write({"ops/workflows/a.yaml": "dirty\n"})
    bare = open_source(repo.url, tmp_path / "cache", None, "ops")
    assert bare.fetch().ok and bare.uncommitted() == []
    remote = open_source(repo.bare.as_uri(), tmp_path / "cache", None, "ops")
    assert remote.uncommitted() == []
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.yaml").write_text("x\n")
    directory = open_source(str(plain), tmp_path / "cache")
    assert isinstance(directory, DirectorySource) and directory.uncommitted() == []
