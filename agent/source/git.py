"""Desired state from a Git repository, read through one cached bare clone.

The cache lives at ``cache_dir/repos/<hash of the URL>.git``. The first fetch creates it,
later ones ``git fetch --prune`` into ``refs/remotes/origin/*`` with forced refspecs, so
force-pushes are followed. Snapshots read files straight from the commit's tree objects
(never from a work tree); each run gets a private detached work tree (``git worktree``).
The remote URL is passed on every network call and never written into the cache, and
every message that could carry it goes through :func:`mask_url`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import posixpath
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import git
import structlog

from agent.errors import SourceError
from agent.source.base import Commit, FetchResult

log = structlog.get_logger(__name__)

_HEADS = "+refs/heads/*:refs/remotes/origin/*"
_TAGS = "+refs/tags/*:refs/tags/*"
_ORIGIN = "refs/remotes/origin/"
_FALLBACK_BRANCHES = ("main", "master")
_FETCH_TIMEOUT = 600.0
_LS_REMOTE_TIMEOUT = 30.0
_SSH_COMMAND = "ssh -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15"
_LOG_FORMAT = "%H%x00%an%x00%ae%x00%ct%x00%B"
_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]+@")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[^-/:][^/:]*:)")  # git: a colon before a slash
_GIT_ERRORS = (git.exc.GitError, git.exc.ODBError, ValueError, OSError)


def mask_url(text: str) -> str:
    """Replace the credentials of every URL in ``text`` with ``***``."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def is_remote_url(location: str) -> bool:
    """Whether ``location`` is a URL (``https://``, ``ssh://``, ``file://``, ``user@host:path``)."""
    return _URL.match(location) is not None


def is_git_repository(path: Path) -> bool:
    """Whether ``path`` is a Git work tree (has ``.git``) or a bare repository."""
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()
    return (path / ".git").exists() or bare


def _git_env() -> dict[str, str]:
    """Environment for every git subprocess: never prompt, give up on dead connections."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
        "GIT_HTTP_LOW_SPEED_TIME": "30",
        "GIT_LFS_SKIP_SMUDGE": "1",
    }
    if "GIT_SSH_COMMAND" not in os.environ and "GIT_SSH" not in os.environ:
        env["GIT_SSH_COMMAND"] = _SSH_COMMAND
    return env


def _one_line(stderr: str, status: int) -> str:
    """Git's complaint on one line: its fatal/error lines, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    text = "; ".join(errors or lines[-1:]) or f"exit status {status}"
    return mask_url(text)[:500]


def _call(g: git.Git, *args: str, timeout: float | None = None) -> tuple[int, str, str]:
    """Run ``git <args>``; return (status, stdout, stderr); raise only if git cannot run."""
    command = getattr(g, args[0].replace("-", "_"))
    try:
        status, out, err = command(
            *args[1:],
            with_extended_output=True,
            with_exceptions=False,
            env=_git_env(),
            kill_after_timeout=timeout,
        )
    except _GIT_ERRORS as exc:
        raise SourceError(mask_url(f"git {args[0]} could not run: {exc}")) from None
    return int(status), str(out), str(err)


def _run(g: git.Git, *args: str, timeout: float | None = None) -> str:
    """Run ``git <args>`` and return its output; raise :class:`SourceError` if it fails."""
    status, out, err = _call(g, *args, timeout=timeout)
    if status != 0:
        raise SourceError(f"git {args[0]} failed: {_one_line(err, status)}")
    return out


def _normalize_root(path: str) -> str:
    """The sub-path as a clean relative POSIX path ("" for the repository root)."""
    root = posixpath.normpath(path.strip().strip("/") or ".")
    if root == ".":
        return ""
    if root == ".." or root.startswith("../"):
        raise SourceError(f"sub-path must stay inside the repository: {path!r}")
    return root


def _key(path: str) -> str:
    """A snapshot path in the form the file index uses."""
    return posixpath.normpath(path)


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn git, gitdb and OS errors raised inside the block into :class:`SourceError`."""
    try:
        yield
    except _GIT_ERRORS as exc:
        raise SourceError(mask_url(f"{action}: {exc}")) from None


def _check_ref(ref: str) -> None:
    """Refuse a revision that git would read as an option."""
    if not ref or ref.startswith("-"):
        raise SourceError(f"unknown revision {ref!r}")


class GitSnapshot:
    """The files of one commit below a sub-path, read from the cached repository's objects."""

    def __init__(self, repo: git.Repo, lock: threading.Lock, revision: str, root: str) -> None:
        self._repo = repo
        self._lock = lock
        self._revision = revision
        self._root = root
        self._index: dict[str, git.Blob] | None = None
        self._sizes: dict[str, int] = {}
        self._contents: dict[str, bytes] = {}

    @property
    def revision(self) -> str:
        return self._revision

    def prefetch(self, paths: list[str], max_bytes: int) -> None:
        """Read many files in two git processes (sizes, then contents up to ``max_bytes``).

        Loading a revision reads every workflow file: one batch is far cheaper than a
        round trip per file. Files that cannot be read this way are read one by one later.
        """
        blobs = {p: self._blobs().get(_key(p)) for p in paths}
        wanted = {p: b.hexsha for p, b in blobs.items() if b is not None}
        if not wanted:
            return
        env = {**os.environ, **_git_env()}
        try:
            checked = (
                subprocess.run(
                    ["git", "cat-file", "--batch-check"],
                    cwd=self._repo.git_dir,
                    env=env,
                    input="\n".join(wanted.values()).encode() + b"\n",
                    capture_output=True,
                    check=True,
                    timeout=60,
                )
                .stdout.decode()
                .splitlines()
            )
            sizes = {}
            for line in checked:
                sha, _, size = line.split()
                sizes[sha] = int(size)
            small = [sha for sha in dict.fromkeys(wanted.values()) if sizes[sha] <= max_bytes]
            out = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=self._repo.git_dir,
                env=env,
                input="\n".join(small).encode() + b"\n",
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
        except (OSError, ValueError, KeyError, subprocess.SubprocessError):
            return  # the one-by-one path still works and reports errors properly
        contents: dict[str, bytes] = {}
        pos = 0
        while pos < len(out):
            end = out.index(b"\n", pos)
            sha, _, size = out[pos:end].decode().split()
            start = end + 1
            contents[sha] = out[start : start + int(size)]
            pos = start + int(size) + 1
        for path, sha in wanted.items():
            self._sizes[_key(path)] = sizes[sha]
            if sha in contents:
                self._contents[_key(path)] = contents[sha]

    def files(self) -> list[str]:
        """Every regular file below the root, sorted."""
        return sorted(self._blobs())

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a regular file in this snapshot."""
        return _key(path) in self._blobs()

    def size(self, path: str) -> int:
        """The file's size in bytes."""
        known = self._sizes.get(_key(path))
        if known is not None:
            return known
        blob = self._blob(path)
        with self._lock, self._errors(path):
            return int(blob.size)

    def read(self, path: str) -> bytes:
        """The file's content."""
        known = self._contents.get(_key(path))
        if known is not None:
            return known
        blob = self._blob(path)
        with self._lock, self._errors(path):
            return bytes(blob.data_stream.read())

    def _blob(self, path: str) -> git.Blob:
        """The blob at ``path``; ``FileNotFoundError`` if there is none."""
        blob = self._blobs().get(_key(path))
        if blob is None:
            raise FileNotFoundError(f"{path} (at {self._revision[:7]})")
        return blob

    def _blobs(self) -> dict[str, git.Blob]:
        """The path → blob index, built once by walking the commit's tree."""
        with self._lock:
            if self._index is None:
                with self._errors(self._root or "."):
                    self._index = self._walk()
            return self._index

    def _walk(self) -> dict[str, git.Blob]:
        """Collect the regular files below the root (symlinks and submodules are skipped)."""
        tree = self._repo.commit(self._revision).tree
        if self._root:
            try:
                node = tree / self._root
            except KeyError:
                return {}
            if not isinstance(node, git.Tree):
                return {}
            tree = node
        index: dict[str, git.Blob] = {}
        pending = [(tree, "")]
        while pending:
            current, prefix = pending.pop()
            for blob in current.blobs:
                if stat.S_ISREG(blob.mode):
                    index[prefix + blob.name] = blob
            pending.extend((sub, f"{prefix}{sub.name}/") for sub in current.trees)
        return index

    def _errors(self, path: str) -> AbstractContextManager[None]:
        """Translate git object errors while reading ``path``."""
        return _translated(f"cannot read {path} at {self._revision[:7]}")


class GitSource:
    """A branch of a Git repository (remote URL or local path), cached as one bare clone."""

    def __init__(
        self, url: str, cache_dir: Path, branch: str | None = None, path: str = ""
    ) -> None:
        self._url = url if is_remote_url(url) else str(Path(url).expanduser().absolute())
        self._branch = branch or None
        self._root = _normalize_root(path)
        digest = hashlib.sha256(mask_url(self._url).encode()).hexdigest()[:16]
        self._mirror = cache_dir / "repos" / f"{digest}.git"
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._repo: git.Repo | None = None
        self._default: str | None = None
        self._last: str | None = None
        self._failing = False

    @property
    def display(self) -> str:
        """The location for humans and logs, credentials masked."""
        return mask_url(self._url)

    @property
    def cache_path(self) -> Path:
        """The cached bare clone's directory."""
        return self._mirror

    @contextmanager
    def _cache_lock(self) -> Iterator[None]:
        """Serialize changes to the cache across threads and processes (an flock file)."""
        with self._lock:
            self._mirror.parent.mkdir(parents=True, exist_ok=True)
            with open(self._mirror.with_name(self._mirror.name + ".lock"), "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def fetch(self) -> FetchResult:
        """Bring the cache up to date and report the tracked branch's commit."""
        with self._cache_lock():
            before = self._last or self._ref_revision(self._tracked_branch())
            try:
                revision = self._fetch()
            except SourceError as exc:
                return self._failed(str(exc))
            return self._succeeded(revision, before)

    def remote_revision(self) -> str | None:
        """The tracked branch's commit on the remote (``git ls-remote``), ``None`` on error."""
        wanted = f"refs/heads/{self._branch}" if self._branch else "HEAD"
        try:
            out = _run(git.cmd.Git(), "ls-remote", self._url, wanted, timeout=_LS_REMOTE_TIMEOUT)
        except SourceError:
            return None
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == wanted:
                return sha
        return None

    def resolve(self, ref: str) -> str:
        """A branch (remote-tracking), tag or (abbreviated) commit to a full commit sha."""
        _check_ref(ref)
        for candidate in (f"{_ORIGIN}{ref}", f"refs/tags/{ref}", ref):
            sha = self._verify(candidate)
            if sha is not None:
                return sha
        raise SourceError(f"unknown revision {ref!r} in {self.display}")

    def snapshot(self, revision: str) -> GitSnapshot:
        """The files of ``revision`` below the sub-path."""
        sha = self._commit_sha(revision)
        return GitSnapshot(self._require_repo(), self._read_lock, sha, self._root)

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
        with self._cache_lock():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SourceError(f"cannot create {target.parent}: {exc}") from None
            _run(
                self._require_repo().git, "worktree", "add", "--detach", "--force", str(target), sha
            )
        return target / self._root if self._root else target

    def remove_checkout(self, dest: Path) -> None:
        """Delete a work tree made by :meth:`checkout`; a missing one is fine."""
        target = dest.absolute()
        with self._cache_lock():
            repo = self._open_repo()
            if repo is not None and target.exists():
                try:
                    _run(repo.git, "worktree", "remove", "--force", str(target))
                except SourceError:
                    shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                shutil.rmtree(target, ignore_errors=True)
            if repo is not None:
                _call(repo.git, "worktree", "prune")
        if target.exists():
            raise SourceError(f"cannot remove checkout {target}")

    def close(self) -> None:
        """Stop the git helper processes the cached repository keeps open."""
        with self._read_lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None

    # fetching

    def _fetch(self) -> str:
        """Fetch the remote into the cache; return the tracked branch's new commit."""
        repo = self._ensure_repo()
        if self._branch is None:
            self._default = self._remote_default_branch()
        _run(
            repo.git,
            "fetch",
            "--prune",
            "--quiet",
            self._url,
            _HEADS,
            _TAGS,
            timeout=_FETCH_TIMEOUT,
        )
        if self._default is not None:
            self._remember_default(repo, self._default)
        branch = self._tracked_branch()
        revision = self._ref_revision(branch)
        if revision is None:
            raise SourceError(f"branch {branch!r} not found at {self.display}")
        return revision

    def _remote_default_branch(self) -> str | None:
        """The branch the remote's HEAD points to, or ``None`` if it does not say."""
        out = _run(
            git.cmd.Git(), "ls-remote", "--symref", self._url, "HEAD", timeout=_LS_REMOTE_TIMEOUT
        )
        for line in out.splitlines():
            target, _, name = line.partition("\t")
            if name == "HEAD" and target.startswith("ref: refs/heads/"):
                return target.removeprefix("ref: refs/heads/")
        return None

    def _remember_default(self, repo: git.Repo, branch: str) -> None:
        """Point ``origin/HEAD`` at the default branch so it is known offline too."""
        if self._symbolic_head() != branch:
            _run(repo.git, "symbolic-ref", f"{_ORIGIN}HEAD", f"{_ORIGIN}{branch}")

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
        status, _, _ = _call(
            self._require_repo().git, "merge-base", "--is-ancestor", ancestor, revision
        )
        return status == 0

    # the cached repository

    def _ensure_repo(self) -> git.Repo:
        """The cached bare repository, created empty on first use."""
        repo = self._open_repo()
        if repo is not None:
            return repo
        try:
            self._create_mirror()
        except (*_GIT_ERRORS, SourceError) as exc:
            raise SourceError(mask_url(f"cannot create the cache {self._mirror}: {exc}")) from None
        return self._require_repo()

    def _create_mirror(self) -> None:
        """Initialise an empty bare repository and move it into place atomically."""
        shutil.rmtree(self._mirror, ignore_errors=True)
        staging = self._mirror.with_name(f"{self._mirror.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        _run(git.cmd.Git(), "init", "--quiet", "--bare", str(staging))
        staging.rename(self._mirror)

    def _open_repo(self) -> git.Repo | None:
        """The cached repository, or ``None`` if it does not exist (yet)."""
        with self._read_lock:
            if self._repo is None and (self._mirror / "HEAD").is_file():
                try:
                    self._repo = git.Repo(self._mirror)
                except _GIT_ERRORS:
                    return None
            return self._repo

    def _require_repo(self) -> git.Repo:
        """The cached repository; :class:`SourceError` if nothing was fetched yet."""
        repo = self._open_repo()
        if repo is None:
            raise SourceError(f"{self.display} has not been fetched yet")
        return repo

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
        repo = self._open_repo()
        if repo is None:
            return None
        status, out, _ = _call(repo.git, "symbolic-ref", "--quiet", f"{_ORIGIN}HEAD")
        name = out.strip()
        return name.removeprefix(_ORIGIN) if status == 0 and name.startswith(_ORIGIN) else None

    def _ref_revision(self, branch: str) -> str | None:
        """The cached remote-tracking commit of ``branch``, or ``None``."""
        try:
            return self._verify(f"{_ORIGIN}{branch}")
        except SourceError:
            return None

    def _verify(self, rev: str) -> str | None:
        """The full sha of the commit ``rev`` names in the cache, or ``None``."""
        repo = self._open_repo()
        if repo is None:
            return None
        status, out, _ = _call(repo.git, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        return out.strip() if status == 0 and out.strip() else None

    def _commit_sha(self, revision: str) -> str:
        """The full sha of ``revision``; :class:`SourceError` if the cache lacks it."""
        _check_ref(revision)
        sha = self._verify(revision)
        if sha is None:
            raise SourceError(f"unknown revision {revision!r} in {self.display}")
        return sha

    def _repo_path(self, path: str) -> str:
        """A path relative to the sub-path, as a path from the repository root."""
        return posixpath.join(self._root, _key(path)) if self._root else _key(path)

    def _log_one(self, *args: str) -> Commit | None:
        """The first commit ``git log`` lists for ``args``, or ``None``."""
        out = _run(self._require_repo().git, "log", "-1", f"--format={_LOG_FORMAT}", *args)
        if not out.strip():
            return None
        sha, name, email, when, body = out.split("\x00", 4)
        subject = body.strip().split("\n", 1)[0].strip()
        return Commit(sha.strip(), subject, name, email, float(when))


__all__ = ["GitSnapshot", "GitSource", "is_git_repository", "is_remote_url", "mask_url"]
