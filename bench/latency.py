"""3. Reconcile latency: a commit pushed to a local bare repository -> its first task started.

A real bare repository and the real ``podium agent`` subprocess. Each sample commits a
change to a one-task workflow (its command changes, so the task is outstanding), pushes
it, and waits until the run of that revision has started its attempt. "Started" is the
attempt's ``started_at`` in the state db (read-only query of ``attempts``), so the
figure is push -> task start, not push -> run finished.

- poll mode: ``--interval 1s``; latency is measured from the end of ``git push``. Before
  each push a random pause (seeded) spreads the push over the poll cycle.
- webhook mode: ``--interval 300s`` (polling never fires); the commit is pushed first,
  then a GitHub-signed ``POST /webhooks/git`` is sent; latency is measured from the POST.

Baseline: the wall time of the ``git push`` itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import (
    PODIUM,
    Config,
    GitRepo,
    Result,
    Table,
    Target,
    bench_env,
    free_port,
    median,
    query,
    ratio,
    wait_until,
)

NAME = "latency"
TITLE = "Reconcile latency: push -> first task started (poll 1s, webhook)"
SECRET = "bench-webhook-secret"  # noqa: S105 - a test value
INTERVAL = 1.0
SAMPLES = 10


def _workflow(version: int) -> str:
    return f"name: w\ntasks:\n  - {{id: a, run: 'echo v{version}'}}\n"


class _Agent:
    def __init__(self, repo: GitRepo, scratch: Path, tag: str, interval: str, env: dict[str, str]):
        self.port = free_port()
        self.state = scratch / f"state-{tag}.db"
        self.log = (scratch / f"agent-{tag}.log").open("wb")
        argv = [PODIUM, "agent", "--repo", repo.url, "--state", str(self.state)]
        argv += ["--data-dir", str(scratch / f"data-{tag}"), "--interval", interval]
        argv += ["--listen", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(
            argv,
            env={**env, "PODIUM_WEBHOOK_SECRET": SECRET},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.started = time.perf_counter()
        wait_until(self._healthy, timeout=30, every=0.05)
        self.healthy_after = time.perf_counter() - self.started

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"agent exited early with {self.proc.returncode}")
        try:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def started_at(self, revision: str) -> float | None:
        rows = query(
            self.state,
            "SELECT MIN(a.started_at) FROM attempts a JOIN runs r ON r.id = a.run_id"
            " WHERE r.revision = ? AND a.phase = 'run'",
            (revision,),
        )
        return rows[0][0] if rows and rows[0][0] is not None else None

    def finished(self, revision: str) -> bool:
        rows = query(self.state, "SELECT status FROM runs WHERE revision = ?", (revision,))
        return bool(rows) and all(r[0] in ("succeeded", "failed") for r in rows)

    def post_push(self, repo: GitRepo, delivery: str) -> tuple[float, float]:
        """Send a signed GitHub push webhook; return (time.time() before it, its round trip)."""
        body = json.dumps({"ref": f"refs/heads/{repo.branch}", "after": repo.head()}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/git",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signature,
            },
        )
        sent = time.time()
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            if response.status != 202:
                raise RuntimeError(f"webhook answered {response.status}")
        return sent, time.perf_counter() - began

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _measure(cfg: Config, mode: str, samples: int) -> dict[str, Any]:
    scratch = cfg.scratch(f"{NAME}-{mode}")
    env = bench_env(scratch / "home")
    rng = random.Random(1234)
    repo = GitRepo(scratch / "repo", env)
    first = repo.commit({"workflows/w.yaml": _workflow(0)}, "v0")
    repo.push()
    agent = _Agent(repo, scratch, mode, "1s" if mode == "poll" else "300s", env)
    latencies: list[float] = []
    pushes: list[float] = []
    posts: list[float] = []
    try:
        wait_until(lambda: agent.finished(first), timeout=60, every=0.05)
        for i in range(1, samples + 1):
            rev = repo.commit({"workflows/w.yaml": _workflow(i)}, f"v{i}")
            if mode == "poll":
                time.sleep(rng.uniform(0, INTERVAL))
                pushes.append(repo.push())
                t0 = time.time()
            else:
                pushes.append(repo.push())
                t0, round_trip = agent.post_push(repo, f"bench-{i}")
                posts.append(round_trip)
            started = wait_until(lambda r=rev: agent.started_at(r), timeout=60, every=0.005)
            latencies.append(started - t0)
            wait_until(lambda r=rev: agent.finished(r), timeout=60, every=0.02)
        healthy = agent.healthy_after
    finally:
        agent.stop()
        cfg.cleanup(scratch)
    return {
        "latencies_s": latencies,
        "push_s": pushes,
        "webhook_round_trip_s": posts,
        "agent_healthy_after_s": healthy,
    }


def run(cfg: Config) -> Result:
    samples = 1 if cfg.quick else max(SAMPLES, cfg.repeat)
    poll = _measure(cfg, "poll", samples)
    hook = _measure(cfg, "webhook", samples)
    rows = []
    for mode, got in (("poll, --interval 1s", poll), ("webhook (signed POST)", hook)):
        lat, push = got["latencies_s"], got["push_s"]
        rows.append(
            [
                mode,
                len(lat),
                median(lat) * 1000,
                min(lat) * 1000,
                max(lat) * 1000,
                median(push) * 1000,
                ratio(median(lat), median(push)),
            ]
        )
    table = Table(
        f"push -> first task started, {samples} sample(s) per mode",
        ["mode", "n", "median ms", "min ms", "max ms", "git push ms", "median / push"],
        rows,
    )
    hook_rt = median(hook["webhook_round_trip_s"]) * 1000
    targets = [
        Target(
            "webhook push -> first task start",
            max(hook["latencies_s"]),
            1.0,
            "s",
            detail=f"worst of {samples}, from the POST (its round trip: {hook_rt:.0f} ms median)",
        ),
        Target(
            "poll mode -> first task start",
            max(poll["latencies_s"]),
            INTERVAL + 1.0,
            "s",
            detail=f"worst of {samples}, from the end of git push; limit = interval + 1 s",
        ),
    ]
    return Result(NAME, TITLE, [table], targets, {"poll": poll, "webhook": hook})
