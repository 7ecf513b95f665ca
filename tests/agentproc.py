"""The real ``podium agent`` as a subprocess, for daemon-level tests (not a test module)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

PODIUM = str(Path(sys.executable).parent / "podium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


class AgentProcess:
    """Starts ``podium agent`` with an HTTP face on a free port; stops it with SIGTERM."""

    def __init__(
        self,
        repo: str,
        state: Path,
        *args: str,
        env: dict[str, str] | None = None,
        listen: bool = True,
        log: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.state = state
        argv = [PODIUM, "--log-format", "json", "agent", "--repo", repo, "--state", str(state)]
        if listen:
            argv += ["--listen", f"127.0.0.1:{self.port}"]
        argv += list(args)
        self.log_path = log or state.with_suffix(".agent.log")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        if listen:
            wait_until(self._healthy, timeout=15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited early:\n{self.output()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self._log.close()
        return code

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


__all__ = ["PODIUM", "AgentProcess", "free_port", "wait_until"]
