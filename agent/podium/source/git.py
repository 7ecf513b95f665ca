"""Desired state from a Git repository, read through one cached bare clone.

The cache lives at ``cache_dir/repos/<hash of the URL>.git``. The first fetch creates it,
later ones ``git fetch --prune`` into ``refs/remotes/origin/*`` with forced refspecs, so
force-pushes are followed. Snapshots read files straight from the commit's tree objects
(never from a work tree); each run gets a private detached work tree (``git worktree``).
The remote URL is passed on every network call and never written into the cache; its
credentials never reach a command line either (see :mod:`podium.source.credentials`),
and every message that could carry it goes through :func:`mask_url`.

What cannot change is not asked of git twice: a full sha verified to name a commit of
the cache, and the snapshot of a commit, hold until the cache is created anew; the
tracked branch's commit and ``origin/HEAD`` hold until the next fetch.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import threading
from pathlib import Path

from podium.errors import SourceError
from podium.log import get_logger
from podium.source.base import Commit, FetchResult
from podium.source.credentials import remote_access
from podium.source.gitcache import Known, Mirror
from podium.source.gitcmd import (
    call_git,
    check_ref,
    is_git_repository,
    is_remote_url,
    mask_url,
    normalize_root,
    path_key,
    run_git,
)
from podium.source.gitsnapshot import GitSnapshot

log = get_logger(__name__)

_HEADS = "+refs/heads/*:refs/remotes/origin/*"
_TAGS = "+refs/tags/*:refs/tags/*"
_ORIGIN = "refs/remotes/origin/"
_FALLBACK_BRANCHES = ("main", "master")
_FETCH_TIMEOUT = 600.0
_LS_REMOTE_TIMEOUT = 30.0
_LOG_FORMAT = "%H%x00%an%x00%ae%x00%cn%x00%ce%x00%ct%x00%B"
_SNAPSHOTS_KEPT = 2


class GitSource:
    """A branch of a Git repository (remote URL or local path), cached as one bare clone."""

    def __init__(
        self, url: str, cache_dir: Path, branch: str | None = None, path: str = ""
    ) -> None:
        self._url = url if is_remote_url(url) else str(Path(url).expanduser().absolute())
        self._access = remote_access(self._url)
        self._branch = branch or None
        self._root = normalize_root(path)
        digest = hashlib.sha256(mask_url(self._url).encode()).hexdigest()[:16]
        self._mirror = Mirror(cache_dir / "repos" / f"{digest}.git")
        self._lock = threading.RLock()
        self._default: str | None = None
        self._last: str | None = None
        self._failing = False
        self._known = Known()

    @property
    def display(self) -> str:
        """The location for humans and logs, credentials masked."""
        return mask_url(self._url)

    @property
    def cache_path(self) -> Path:
        """The cached bare clone's directory."""
        return self._mirror.path

    def fetch(self) -> FetchResult:
        """Bring the cache up to date and report the tracked branch's commit.

        Every failure is a result with an error, never an exception.
        """
        with self._lock:
            try:
                with self._mirror.locked():
                    before = self._last or self._ref_revision(self._tracked_branch())
                    revision = self._fetch()
                    return self._succeeded(revision, before)
            except SourceError as exc:
                return self._failed(str(exc))

    def remote_revision(self) -> str | None:
        """The tracked branch's commit on the remote (``git ls-remote``), ``None`` on error."""
        wanted = f"refs/heads/{self._branch}" if self._branch else "HEAD"
        try:
            out = run_git(
                None,
                "ls-remote",
                self._access.url,
                wanted,
                timeout=_LS_REMOTE_TIMEOUT,
                env=self._access.env,
            )
        except SourceError:
            return None
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == wanted:
                return sha
        return None

    def resolve(self, ref: str) -> str:
        """A branch (remote-tracking), tag or (abbreviated) commit to a full commit sha."""
        check_ref(ref)
        for candidate in (f"{_ORIGIN}{ref}", f"refs/tags/{ref}", ref):
            sha = self._verify(candidate)
            if sha is not None:
                return sha
        raise SourceError(f"unknown revision {ref!r} in {self.display}")

    def snapshot(self, revision: str) -> GitSnapshot:
        """The files of ``revision`` below the sub-path (the same object again while it is
        one of the last few asked for)."""
        sha = self._commit_sha(revision)
        known = self._known.current(self._mirror).snapshots
        found = known.get(sha)
        if found is None:
            found = known[sha] = GitSnapshot(self._mirror, sha, self._root)
            while len(known) > _SNAPSHOTS_KEPT:
                known.popitem(last=False)
        known.move_to_end(sha)
        return found

    def commit(self, revision: str) -> Commit:
        """Metadata of the commit ``revision`` names."""
        found = self._log_one(self._commit_sha(revision))
        if found is None:
            raise SourceError(f"unknown revision {revision!r} in {self.display}")
        return found

    def last_change(self, revision: str, paths: list[str]) -> Commit | None:
        """The newest commit at or before ``revision`` that touched any of ``paths``."""
        sha = self._commit_sha(revision)
        if not paths:
            return None
        specs = [self._repo_path(path) for path in paths]
        return self._log_one(sha, "--", *specs)

    def checkout(self, revision: str, dest: Path) -> Path:
        """A private detached work tree of ``revision`` at ``dest``; returns its sub-path root."""
        sha = self._commit_sha(revision)
        target = dest.absolute()
        with self._mirror.locked():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SourceError(f"cannot create {target.parent}: {exc}") from None
            run_git(
                self._require_repo(), "worktree", "add", "--detach", "--force", str(target), sha
            )
        if not self._root:
            return target
        root = target / self._root
        if not root.resolve().is_relative_to(target.resolve()):
            self.remove_checkout(target)
            raise SourceError(
                f"sub-path {self._root!r} leads outside the repository at {sha[:7]} (a symlink)"
            )
        return root

    def remove_checkout(self, dest: Path) -> None:
        """Delete a work tree made by :meth:`checkout`; a missing one is fine."""
        target = dest.absolute()
        with self._mirror.locked():
            repo = self._mirror.path if self._mirror.exists() else None
            if repo is not None and target.exists():
                try:
                    run_git(repo, "worktree", "remove", "--force", str(target))
                except SourceError:
                    shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                shutil.rmtree(target, ignore_errors=True)
            if repo is not None:
                call_git(repo, "worktree", "prune")
        if target.exists():
            raise SourceError(f"cannot remove checkout {target}")

    def uncommitted(self, prefix: str = "") -> list[str]:
        """Files below the sub-path (and ``prefix`` in it) whose content in the local work
        tree differs from the tracked commit: modified, deleted, staged or untracked (not
        ignored). Paths are relative to the sub-path, sorted; empty for a remote or bare
        repository. :class:`SourceError` if git cannot tell.

        The tracked commit is the last one fetched, else the tracked branch (or ``HEAD``)
        of the local repository.
        """
        work = Path(self._url)
        if is_remote_url(self._url) or not (work / ".git").exists():
            return []  # no work tree
        from podium.source.worktree import changed_paths  # loaded for a work tree only

        below = posixpath.join(self._root, normalize_root(prefix)).rstrip("/")
        paths = changed_paths(work, self._tracked_commit(), below)
        start = len(self._root) + 1 if self._root else 0
        return [path[start:] for path in paths]

    def _tracked_commit(self) -> str:
        """The commit a work tree is compared with (see :meth:`uncommitted`)."""
        with self._lock:
            known = self._last or self._ref_revision(self._tracked_branch())
        if known is not None:
            return known
        return f"refs/heads/{self._branch}" if self._branch else "HEAD"

    def close(self) -> None:
        """Stop the git helper processes the cached repository keeps open."""
        self._mirror.close()

    # fetching

    def _fetch(self) -> str:
        """Fetch the remote into the cache; return the tracked branch's new commit."""
        repo = self._mirror.ensure()
        if self._branch is None:
            self._default = self._remote_default_branch()
        try:
            run_git(
                repo,
                "fetch",
                "--prune",
                "--quiet",
                self._access.url,
                _HEADS,
                _TAGS,
                timeout=_FETCH_TIMEOUT,
                env=self._access.env,
            )
        finally:
            self._known.fetched()
        if self._default is not None:
            self._remember_default(self._default)
        branch = self._tracked_branch()
        revision = self._ref_revision(branch)
        if revision is None:
            raise SourceError(f"branch {branch!r} not found at {self.display}")
        return revision

    def _remote_default_branch(self) -> str | None:
        """The branch the remote's HEAD points to, or ``None`` if it does not say."""
        out = run_git(
            None,
            "ls-remote",
            "--symref",
            self._access.url,
            "HEAD",
            timeout=_LS_REMOTE_TIMEOUT,
            env=self._access.env,
        )
        for line in out.splitlines():
            target, _, name = line.partition("\t")
            if name == "HEAD" and target.startswith("ref: refs/heads/"):
                return target.removeprefix("ref: refs/heads/")
        return None

    def _remember_default(self, branch: str) -> None:
        """Point ``origin/HEAD`` at the default branch so it is known offline too."""
        if self._symbolic_head() != branch:
            generation = self._known.generation
            run_git(self._mirror.path, "symbolic-ref", f"{_ORIGIN}HEAD", f"{_ORIGIN}{branch}")
            self._known.remember("HEAD", branch, generation)

    def _succeeded(self, revision: str, before: str | None) -> FetchResult:
        """Record a good fetch and say what changed."""
        changed = revision != self._last
        forced = before is not None and before != revision and not self._descends(revision, before)
        recovered = self._failing
        if recovered:
            log.info("source_recovered", source=self.display, revision=revision)
        self._failing = False
        self._last = revision
        return FetchResult(revision=revision, changed=changed, forced=forced, recovered=recovered)

    def _failed(self, message: str) -> FetchResult:
        """Record a failed fetch; log it once per outage."""
        began = not self._failing
        if began:
            log.warning("source_unreachable", source=self.display, error=message)
        self._failing = True
        revision = self._last or self._ref_revision(self._tracked_branch())
        return FetchResult(revision=revision, error=message, outage_began=began)

    def _descends(self, revision: str, ancestor: str) -> bool:
        """Whether ``ancestor`` is reachable from ``revision`` (false if unknown)."""
        status, _, _ = call_git(
            self._require_repo(), "merge-base", "--is-ancestor", ancestor, revision
        )
        return status == 0

    # the cached repository

    def _require_repo(self) -> Path:
        """The cached repository; :class:`SourceError` if nothing was fetched yet."""
        if not self._mirror.exists():
            raise SourceError(f"{self.display} has not been fetched yet")
        return self._mirror.path

    @property
    def branch(self) -> str | None:
        """The branch tracked: the one asked for, else the remote's default once known."""
        return self._branch or self._default or self._symbolic_head()

    def _tracked_branch(self) -> str:
        """The configured branch, else the remote's default, else main, else master."""
        if self._branch:
            return self._branch
        if self._default:
            return self._default
        head = self._symbolic_head()
        if head:
            return head
        for name in _FALLBACK_BRANCHES:
            if self._ref_revision(name) is not None:
                return name
        return _FALLBACK_BRANCHES[0]

    def _symbolic_head(self) -> str | None:
        """The default branch recorded in the cache (``origin/HEAD``), if any."""
        known = self._known.current(self._mirror)
        if "HEAD" in known.refs:
            return known.refs["HEAD"]
        generation = known.generation
        if not self._mirror.exists():
            return None
        status, out, _ = call_git(self._mirror.path, "symbolic-ref", "--quiet", f"{_ORIGIN}HEAD")
        name = out.strip()
        head = name.removeprefix(_ORIGIN) if status == 0 and name.startswith(_ORIGIN) else None
        known.remember("HEAD", head, generation)
        return head

    def _ref_revision(self, branch: str) -> str | None:
        """The cached remote-tracking commit of ``branch``, or ``None``."""
        known = self._known.current(self._mirror)
        if branch in known.refs:
            return known.refs[branch]
        generation = known.generation
        try:
            sha = self._verify(f"{_ORIGIN}{branch}")
        except SourceError:
            return None
        known.remember(branch, sha, generation)
        return sha

    def _verify(self, rev: str) -> str | None:
        """The full sha of the commit ``rev`` names in the cache, or ``None``."""
        known = self._known.current(self._mirror)
        if rev in known.commits:
            return rev
        if not self._mirror.exists():
            return None
        status, out, _ = call_git(
            self._mirror.path, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"
        )
        sha = out.strip()
        if status != 0 or not sha:
            return None
        known.commits.add(sha)
        return sha

    def _commit_sha(self, revision: str) -> str:
        """The full sha of ``revision``; :class:`SourceError` if the cache lacks it."""
        check_ref(revision)
        sha = self._verify(revision)
        if sha is None:
            raise SourceError(f"unknown revision {revision!r} in {self.display}")
        return sha

    def _repo_path(self, path: str) -> str:
        """A path relative to the sub-path, as a path from the repository root."""
        return posixpath.join(self._root, path_key(path)) if self._root else path_key(path)

    def _log_one(self, *args: str) -> Commit | None:
        """The first commit ``git log`` lists for ``args``, or ``None``."""
        out = run_git(self._require_repo(), "log", "-1", f"--format={_LOG_FORMAT}", *args)
        if not out.strip():
            return None
        sha, name, email, committer, committer_email, when, body = out.split("\x00", 6)
        subject = body.strip().split("\n", 1)[0].strip()
        return Commit(
            sha.strip(),
            subject,
            name,
            email,
            float(when),
            committer_name=committer,
            committer_email=committer_email,
        )


__all__ = ["GitSnapshot", "GitSource", "is_git_repository", "is_remote_url", "mask_url"]
