"""GitSource against real repositories: a bare "remote" and a work tree that pushes to it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from podium.errors import SourceError
from podium.source import GitSource
from podium.source.git import mask_url
from tests.gitrepo import GitRepo, git

WORKFLOW = "workflows/deploy.yaml"


class Upstream(GitRepo):
    """A :class:`GitRepo` whose commits stay local until pushed (plain, forced, to a branch)."""

    def commit(  # type: ignore[override]
        self, files: dict[str, str | None], message: str = "change", **env: str
    ) -> str:
        """Write (or delete, for ``None``) files, commit them all, return the new sha."""
        return super().commit(files, message, author=env.get("author"), push=False)

    def push(self, *, force: bool = False, branch: str | None = None) -> None:
        """Push a branch (the default one unless named) to the bare remote."""
        flags = ["--force"] if force else []
        target = f"HEAD:refs/heads/{branch or self.branch}"
        git("push", "-q", *flags, "origin", target, cwd=self.work)

    def publish(self, files: dict[str, str | None], message: str = "change", **env: str) -> str:
        """Commit and push; return the new sha."""
        sha = self.commit(files, message, **env)
        self.push()
        return sha


@pytest.fixture(autouse=True)
def git_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fixed identity and no user or system git configuration."""
    (tmp_path / "gitconfig").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Ada Author")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "ada@example.com")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    """A remote with one commit holding a workflow file on main."""
    repo = Upstream(tmp_path)
    repo.publish({WORKFLOW: "version: 1\n", "README.md": "hello\n"}, "add deploy workflow")
    return repo


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """The agent's cache directory."""
    return tmp_path / "cache"


def test_first_fetch_clones_and_reads_the_workflow(upstream: Upstream, cache: Path) -> None:
    """The first fetch creates the cache and the snapshot reads the committed workflow."""
    source = GitSource(str(upstream.bare), cache)
    result = source.fetch()
    assert result.ok and result.changed and not result.forced
    assert result.revision == git("rev-parse", "HEAD", cwd=upstream.work)
    assert source.cache_path.is_dir() and source.cache_path.parent == cache / "repos"
    snap = source.snapshot(result.revision)
    assert snap.revision == result.revision
    assert snap.files() == ["README.md", WORKFLOW]
    assert snap.read(WORKFLOW) == b"version: 1\n"
    assert snap.size(WORKFLOW) == 11
    assert snap.exists(WORKFLOW) and not snap.exists("workflows/other.yaml")


def test_new_commit_is_seen_while_the_old_snapshot_keeps_its_content(
    upstream: Upstream, cache: Path
) -> None:
    """A pushed commit shows up as changed; a snapshot of the old revision still reads old text."""
    source = GitSource(upstream.bare.as_uri(), cache)
    first = source.fetch().revision
    assert first is not None
    old = source.snapshot(first)
    assert old.read(WORKFLOW) == b"version: 1\n"
    new_sha = upstream.publish({WORKFLOW: "version: 2\n", "extra.txt": "x"})
    result = source.fetch()
    assert result.changed and not result.forced and result.revision == new_sha
    assert source.snapshot(new_sha).read(WORKFLOW) == b"version: 2\n"
    assert old.read(WORKFLOW) == b"version: 1\n"
    assert "extra.txt" not in old.files()


def test_unchanged_fetch_reports_no_change_and_keeps_the_cache(
    upstream: Upstream, cache: Path
) -> None:
    """Fetching twice without a new commit says unchanged and reuses the same cached clone."""
    source = GitSource(str(upstream.bare), cache)
    first = source.fetch()
    marker = source.cache_path / "podium-test-marker"
    marker.write_text("still here")
    inode = source.cache_path.stat().st_ino
    second = source.fetch()
    assert second.ok and not second.changed and second.revision == first.revision
    again = GitSource(str(upstream.bare), cache).fetch()
    assert again.changed and again.revision == first.revision
    assert marker.read_text() == "still here"
    assert source.cache_path.stat().st_ino == inode


def test_force_push_is_followed_and_reported(upstream: Upstream, cache: Path) -> None:
    """Rewriting history with a force-push moves the tracked revision and sets forced."""
    source = GitSource(str(upstream.bare), cache)
    before = upstream.publish({WORKFLOW: "version: 2\n"}, "to be rewritten")
    assert source.fetch().revision == before
    git("reset", "-q", "--hard", "HEAD~1", cwd=upstream.work)
    rewritten = upstream.commit({WORKFLOW: "version: 3\n"}, "rewritten")
    upstream.push(force=True)
    result = source.fetch()
    assert result.ok and result.changed and result.forced
    assert result.revision == rewritten
    assert source.snapshot(rewritten).read(WORKFLOW) == b"version: 3\n"
    assert source.snapshot(before).read(WORKFLOW) == b"version: 2\n"
    follow_up = upstream.publish({WORKFLOW: "version: 4\n"})
    assert not source.fetch().forced and source.fetch().revision == follow_up


def test_unreachable_remote_keeps_the_last_revision_and_reports_the_outage_once(
    upstream: Upstream, cache: Path
) -> None:
    """While the remote is gone fetch keeps the last revision and flags the outage's start once."""
    source = GitSource(str(upstream.bare), cache)
    last = source.fetch().revision
    moved = upstream.bare.with_name("moved.git")
    upstream.bare.rename(moved)
    with capture_logs() as logs:
        first = source.fetch()
        second = source.fetch()
        moved.rename(upstream.bare)
        back = source.fetch()
    assert first.revision == last and first.error and first.outage_began
    assert "\n" not in first.error
    assert second.revision == last and second.error and not second.outage_began
    assert back.ok and back.recovered and not back.changed and back.revision == last
    events = [entry["event"] for entry in logs]
    assert events.count("source_unreachable") == 1
    assert events.count("source_recovered") == 1
    assert not source.fetch().recovered


def test_new_instance_returns_the_cached_revision_while_the_remote_is_gone(
    tmp_path: Path, cache: Path
) -> None:
    """After a restart with the remote gone, the cache's last revision and branch are used."""
    upstream = Upstream(tmp_path, branch="trunk")
    upstream.commit({"other.txt": "on trunk\n"})
    upstream.push(branch="main")
    sha = upstream.publish({WORKFLOW: "trunk\n"})
    GitSource(str(upstream.bare), cache).fetch()
    upstream.bare.rename(tmp_path / "gone.git")
    restarted = GitSource(str(upstream.bare), cache)
    result = restarted.fetch()
    assert result.revision == sha and result.error and result.outage_began
    assert restarted.snapshot(sha).read(WORKFLOW) == b"trunk\n"


def test_credentials_never_appear_in_errors_or_logs(cache: Path) -> None:
    """A URL's password is masked in the display, the fetch error and every log event."""
    source = GitSource("https://user:s3cr3t@127.0.0.1:9/repo.git", cache)
    with capture_logs() as logs:
        result = source.fetch()
        assert source.remote_revision() is None
    assert result.revision is None and result.error and result.outage_began
    assert "s3cr3t" not in result.error
    assert "s3cr3t" not in source.display and "***@127.0.0.1" in source.display
    assert logs and "s3cr3t" not in repr(logs)
    with pytest.raises(SourceError) as caught:
        source.resolve("main")
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:tok@host/r.git", "https://***@host/r.git"),
        ("fatal: 'https://tok@github.com/o' failed", "fatal: 'https://***@github.com/o' failed"),
        ("ssh://git@host:22/r.git and http://a:b@c", "ssh://***@host:22/r.git and http://***@c"),
        ("https://host/r.git git@host:o/r.git", "https://host/r.git git@host:o/r.git"),
    ],
)
def test_mask_url_hides_user_info(text: str, expected: str) -> None:
    """Every URL's user-info is replaced with *** and nothing else changes."""
    assert mask_url(text) == expected


def test_snapshot_ignores_uncommitted_edits_of_a_work_tree(upstream: Upstream, cache: Path) -> None:
    """Pointing at a work tree reads what is committed, not what is edited on disk."""
    (upstream.work / WORKFLOW).write_text("dirty edit\n")
    (upstream.work / "untracked.yaml").write_text("new\n")
    source = GitSource(str(upstream.work), cache)
    result = source.fetch()
    assert result.ok and result.revision is not None
    snap = source.snapshot(result.revision)
    assert snap.read(WORKFLOW) == b"version: 1\n"
    assert "untracked.yaml" not in snap.files()


def test_sub_path_hides_outside_files_and_checkout_returns_it(
    upstream: Upstream, cache: Path, tmp_path: Path
) -> None:
    """Only files below the sub-path are visible, relative to it; checkout returns dest/sub."""
    sha = upstream.publish({"examples-repo/podium.yaml": "a\n", "examples-repo/wf/x.yaml": "b\n"})
    source = GitSource(str(upstream.bare), cache, path="examples-repo/")
    source.fetch()
    snap = source.snapshot(sha)
    assert snap.files() == ["podium.yaml", "wf/x.yaml"]
    assert snap.read("./wf/x.yaml") == b"b\n"
    assert not snap.exists("README.md") and not snap.exists("../README.md")
    root = source.checkout(sha, tmp_path / "runs" / "r1")
    assert root == (tmp_path / "runs" / "r1" / "examples-repo").absolute()
    assert (root / "wf" / "x.yaml").read_text() == "b\n"
    source.remove_checkout(tmp_path / "runs" / "r1")


def test_missing_sub_path_gives_an_empty_snapshot(upstream: Upstream, cache: Path) -> None:
    """A sub-path absent at a revision yields no files rather than an error."""
    source = GitSource(str(upstream.bare), cache, path="nowhere")
    result = source.fetch()
    assert result.revision is not None
    assert source.snapshot(result.revision).files() == []
    with pytest.raises(FileNotFoundError):
        source.snapshot(result.revision).read(WORKFLOW)


def test_checkout_is_isolated_and_remove_cleans_up(
    upstream: Upstream, cache: Path, tmp_path: Path
) -> None:
    """A checkout keeps its revision's files after later commits; removing it leaves nothing."""
    source = GitSource(str(upstream.bare), cache)
    first = source.fetch().revision
    assert first is not None
    dest = tmp_path / "checkouts" / "run-1"
    root = source.checkout(first, dest)
    assert root == dest.absolute()
    later = upstream.publish({WORKFLOW: "version: 2\n"})
    source.fetch()
    other = source.checkout(later, tmp_path / "checkouts" / "run-2")
    assert (root / WORKFLOW).read_text() == "version: 1\n"
    assert (other / WORKFLOW).read_text() == "version: 2\n"
    assert git("rev-parse", "HEAD", cwd=root) == first
    source.remove_checkout(dest)
    source.remove_checkout(tmp_path / "checkouts" / "run-2")
    assert not dest.exists() and not (tmp_path / "checkouts" / "run-2").exists()
    assert git("worktree", "list", "--porcelain", cwd=source.cache_path).count("worktree ") == 1
    source.remove_checkout(dest)


def test_checkout_of_unknown_revision_raises_source_error(
    upstream: Upstream, cache: Path, tmp_path: Path
) -> None:
    """Asking for a checkout of a commit the cache lacks is a SourceError."""
    source = GitSource(str(upstream.bare), cache)
    source.fetch()
    with pytest.raises(SourceError, match="unknown revision"):
        source.checkout("0" * 40, tmp_path / "nope")


def test_last_change_names_the_author_who_touched_the_file(upstream: Upstream, cache: Path) -> None:
    """last_change returns the newest commit that modified one of the paths, with its author."""
    touched = upstream.publish(
        {"sub/wf/a.yaml": "a\n"}, "edit a\n\nbody", author="Grace <grace@example.com>"
    )
    head = upstream.publish({"sub/wf/b.yaml": "b\n"}, "edit b", author="Linus <linus@example.com>")
    source = GitSource(str(upstream.bare), cache, path="sub")
    source.fetch()
    found = source.last_change(head, ["wf/a.yaml"])
    assert found is not None
    assert (found.sha, found.author_name, found.author_email) == (
        touched,
        "Grace",
        "grace@example.com",
    )
    assert found.subject == "edit a"
    assert source.last_change(head, ["wf/a.yaml", "wf/b.yaml"]) == source.commit(head)
    assert source.last_change(head, ["wf/never.yaml"]) is None
    assert source.last_change(head, []) is None


def test_commit_reports_subject_author_and_time(upstream: Upstream, cache: Path) -> None:
    """commit() gives the first line of the message, the author and the commit time."""
    before = time.time()
    sha = upstream.publish({"x": "1"}, "first line\nsecond line\n\nbody")
    source = GitSource(str(upstream.bare), cache)
    source.fetch()
    found = source.commit(sha[:10])
    assert found.sha == sha and found.short == sha[:7]
    assert found.subject == "first line"
    assert (found.author_name, found.author_email) == ("Ada Author", "ada@example.com")
    assert before - 2 <= found.committed_at <= time.time() + 2


def test_commit_and_last_change_name_the_committer_apart_from_the_author(
    upstream: Upstream, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit applied by someone else reports its committer next to its author."""
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Carol Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "carol@example.com")
    sha = upstream.publish(
        {WORKFLOW: "version: 2\n"}, "applied", author="Grace <grace@example.com>"
    )
    source = GitSource(str(upstream.bare), cache)
    source.fetch()
    for found in (source.commit(sha), source.last_change(sha, [WORKFLOW])):
        assert found is not None
        assert (found.author_name, found.author_email) == ("Grace", "grace@example.com")
        assert (found.committer_name, found.committer_email) == (
            "Carol Committer",
            "carol@example.com",
        )


def test_resolve_other_branch_tag_and_abbreviated_sha(upstream: Upstream, cache: Path) -> None:
    """resolve() maps another branch, a tag and a short sha to full commit shas."""
    main_sha = git("rev-parse", "HEAD", cwd=upstream.work)
    feature_sha = upstream.commit({"feature.txt": "f\n"}, "feature")
    upstream.push(branch="feature")
    git("tag", "-a", "v1", "-m", "release", main_sha, cwd=upstream.work)
    git("push", "-q", "origin", "v1", cwd=upstream.work)
    source = GitSource(str(upstream.bare), cache)
    assert source.fetch().revision == main_sha
    assert source.resolve("feature") == feature_sha
    assert source.resolve("main") == main_sha
    assert source.resolve("v1") == main_sha
    assert source.resolve(feature_sha[:8]) == feature_sha
    with pytest.raises(SourceError, match="unknown revision"):
        source.resolve("no-such-branch")
    with pytest.raises(SourceError, match="unknown revision"):
        source.resolve("--output=/tmp/x")


def test_default_branch_follows_the_remotes_head(tmp_path: Path, cache: Path) -> None:
    """Without a configured branch the remote's default ("trunk") is tracked, not main."""
    upstream = Upstream(tmp_path, branch="trunk")
    upstream.publish({"decoy.txt": "main\n"})
    upstream.push(branch="main")
    trunk = upstream.publish({WORKFLOW: "trunk\n"})
    source = GitSource(str(upstream.bare), cache)
    assert source.fetch().revision == trunk
    assert source.remote_revision() == trunk
    assert GitSource(str(upstream.bare), cache, branch="main").fetch().revision != trunk


def test_missing_branch_is_a_fetch_error(upstream: Upstream, cache: Path) -> None:
    """Tracking a branch the remote lacks gives an error result, not an exception."""
    result = GitSource(str(upstream.bare), cache, branch="release").fetch()
    assert result.revision is None and result.error and "release" in result.error


def test_remote_revision_is_read_without_fetching(upstream: Upstream, cache: Path) -> None:
    """remote_revision() reports the remote tip before fetch sees it, and None when unreachable."""
    source = GitSource(str(upstream.bare), cache, branch="main")
    source.fetch()
    newer = upstream.publish({WORKFLOW: "version: 2\n"})
    assert source.remote_revision() == newer
    upstream.bare.rename(upstream.bare.with_name("away.git"))
    assert source.remote_revision() is None


def test_snapshot_of_a_thousand_files_is_fast(upstream: Upstream, cache: Path) -> None:
    """Listing and reading ~1000 files of a snapshot takes well under a second."""
    sha = upstream.publish({f"many/d{i % 20}/f{i}.txt": f"{i}\n" for i in range(1000)})
    source = GitSource(str(upstream.bare), cache, path="many")
    source.fetch()
    started = time.perf_counter()
    snap = source.snapshot(sha)
    files = snap.files()
    contents = {path: snap.read(path) for path in files}
    elapsed = time.perf_counter() - started
    assert len(files) == 1000 and contents["d7/f7.txt"] == b"7\n"
    assert elapsed < 1.5


def test_reads_from_threads_while_fetching_and_checking_out(
    upstream: Upstream, cache: Path, tmp_path: Path
) -> None:
    """Concurrent snapshot reads, fetches and checkouts from several threads all succeed."""
    sha = upstream.publish({f"wf/{i}.yaml": f"n: {i}\n" for i in range(50)})
    source = GitSource(str(upstream.bare), cache)
    source.fetch()
    snap = source.snapshot(sha)
    errors: list[BaseException] = []

    def read_all() -> None:
        try:
            for _ in range(5):
                for i in range(50):
                    assert snap.read(f"wf/{i}.yaml") == f"n: {i}\n".encode()
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    def fetch_and_checkout(n: int) -> None:
        try:
            source.fetch()
            source.checkout(sha, tmp_path / "co" / str(n))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read_all) for _ in range(4)]
    threads += [threading.Thread(target=fetch_and_checkout, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all((tmp_path / "co" / str(n) / "wf" / "1.yaml").is_file() for n in range(3))
