"""What can be checked of the Dockerfile without a Docker engine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
