"""What can be checked of the Dockerfile without a Docker engine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    return [line for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def test_base_image_is_a_pinned_slim_official_python() -> None:
    """FROM names python:<major.minor.patch>-slim-*, never a floating tag."""
    (base,) = _instructions("FROM")
    assert re.fullmatch(r"FROM python:3\.\d+\.\d+-slim-\w+", base), base


def test_runs_as_a_non_root_user_with_git_and_a_data_volume() -> None:
    """The image switches to a non-root user, installs git and declares a volume."""
    users = _instructions("USER")
    assert users and users[-1].split()[1] not in ("root", "0")
    assert "git" in DOCKERFILE
    assert _instructions("VOLUME")


def test_entrypoint_is_the_agent_console_script_with_a_healthcheck() -> None:
    """The entrypoint runs `podium agent` (a real console script) and health-checks /healthz."""
    (entry,) = _instructions("ENTRYPOINT")
    assert '"podium", "agent"' in entry
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["podium"] == "podium.cli:main"
    assert "/healthz" in "".join(_instructions("HEALTHCHECK") + DOCKERFILE.splitlines())
    assert "PODIUM_LISTEN" in DOCKERFILE


def _lines() -> list[str]:
    """Instructions with continuation lines joined."""
    return DOCKERFILE.replace("\\\n", " ").splitlines()


def test_the_data_directory_belongs_to_the_agent_user_before_it_becomes_a_volume() -> None:
    """/data is created and chowned to uid 10001 before VOLUME, and the agent runs as 10001."""
    lines = _lines()
    volume = next(i for i, line in enumerate(lines) if line.startswith("VOLUME"))
    owning = [
        i
        for i, line in enumerate(lines)
        if line.startswith("RUN")
        and re.search(r"chown (10001|podium)(:(10001|podium))? /data", line)
    ]
    assert owning and owning[0] < volume
    assert "mkdir -p /data" in lines[owning[0]]
    (user,) = [line for line in lines if line.startswith("USER")]
    assert user.split()[1].split(":")[0] in ("10001", "podium")


def test_the_ownership_step_makes_a_directory_the_agent_user_can_write() -> None:
    """The image's /data step, run in a temporary root, leaves a directory uid 10001 can write."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as uid 10001")
    (step,) = [line for line in _lines() if line.startswith("RUN") and "chown" in line]
    fs = [part.strip() for part in step.removeprefix("RUN").split("&&")]
    fs = [c for c in fs if c.split()[0] in ("mkdir", "chown", "chmod")]
    # a root the other user can reach (pytest's own temporary directories are private)
    top = tempfile.TemporaryDirectory(prefix="podium-image-")
    root = Path(top.name)
    root.chmod(0o755)
    for command in fs:
        subprocess.run(command.replace("/data", f"{root}/data"), shell=True, check=True)
    data = root / "data"
    assert data.stat().st_uid == 10001 and data.stat().st_gid == 10001
    wrote = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "10001",
            "--regid",
            "10001",
            "--clear-groups",
            "touch",
            str(data / "state.db"),
        ],
        capture_output=True,
    )
    top.cleanup()
    assert wrote.returncode == 0, wrote.stderr


def test_the_image_installs_pinned_versions_of_every_dependency() -> None:
    """constraints.txt pins (==) every dependency of both distributions, within their ranges."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[canonicalize_name(name)] = version
    wanted = []
    for project in (ROOT / "pyproject.toml", ROOT / "integrations/slack/pyproject.toml"):
        wanted += tomllib.loads(project.read_text())["project"]["dependencies"]
    for spec in wanted:
        req = Requirement(spec)
        if canonicalize_name(req.name) == "podium":
            continue
        assert canonicalize_name(req.name) in pins, f"{req.name} is not pinned"
        assert req.specifier.contains(pins[canonicalize_name(req.name)]), spec
    (install,) = [line for line in _lines() if line.startswith("RUN pip install")]
    assert "-c constraints.txt" in install and "./integrations/slack" in install


def test_the_default_shutdown_fits_in_docker_stop() -> None:
    """Shutdown grace plus a task's TERM-to-KILL grace stay under docker stop's 10 s."""
    from podium.engine import EngineConfig
    from podium.settings import AgentSettings

    grace = AgentSettings.model_fields["shutdown_grace"].default
    assert grace + EngineConfig(data_dir=Path(".")).grace < 10
    assert "STOPSIGNAL SIGTERM" in DOCKERFILE and "--stop-timeout" in DOCKERFILE
