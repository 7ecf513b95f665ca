"""The spawning floor of a Python orchestrator: the benchmark DAG run by nothing but
``os.posix_spawn`` and pidfds (no state, no logs, no output capture), ``concurrency``
processes at a time.

    python bench/spawnfloor.py N [--load-podium]

``--load-podium`` imports Podium's modules first, so the process has the resident size
of a real orchestrator; starting a process costs more from a bigger parent on some
machines, and this is how much. Exits non-zero if a task fails.
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import shutil
import sys
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.dag import CONCURRENCY, needs_of  # noqa: E402 - the path above must come first

PODIUM_MODULES = ("podium.cli.app", "podium.engine", "podium.reconciler")


def run(n: int, program: str) -> int:
    dependants: dict[int, list[int]] = {i: [] for i in range(n)}
    unmet = {}
    for i in range(n):
        needs = needs_of(i)
        unmet[i] = len(needs)
        for need in needs:
            dependants[need].append(i)
    ready = deque(i for i in range(n) if unmet[i] == 0)
    poller = select.poll()
    running: dict[int, tuple[int, int]] = {}  # pidfd -> (task, pid)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    failed = 0
    done = 0
    while done < n:
        while ready and len(running) < CONCURRENCY:
            task = ready.popleft()
            pid = os.posix_spawn(
                program,
                [program],
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0)],
                setsid=True,
            )
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
            running[pidfd] = (task, pid)
        for pidfd, _ in poller.poll():
            task, pid = running.pop(pidfd)
            poller.unregister(pidfd)
            os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            failed += os.waitstatus_to_exitcode(status) != 0
            done += 1
            for dep in dependants[task]:
                unmet[dep] -= 1
                if unmet[dep] == 0:
                    ready.append(dep)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("--load-podium", action="store_true")
    args = parser.parse_args()
    if args.load_podium:
        for module in PODIUM_MODULES:  # loaded for their resident size only
            importlib.import_module(module)
    program = shutil.which("true")
    if program is None:
        print("spawnfloor: no 'true' program on PATH", file=sys.stderr)
        return 2
    return 1 if run(args.n, program) else 0


if __name__ == "__main__":
    sys.exit(main())
