"""Agent settings: flags, then ``PODIUM_*`` environment, then a config file, then defaults.

The one place that reads process-wide configuration. A bad value becomes one
:class:`~podium.errors.ConfigError` line naming the setting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from podium.durations import parse_duration
from podium.errors import ConfigError

Seconds = Annotated[float, BeforeValidator(parse_duration)]
_CONFIG_FILE: list[Path | None] = [None]  # set by load_settings for the file source


class _YamlFileSource(PydanticBaseSettingsSource):
    """Settings from a YAML (or JSON) file; keys are the setting names."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = yaml.safe_load(self.path.read_text())
        except OSError as exc:
            raise ConfigError(f"config file {self.path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {self.path}: not valid YAML ({exc})") from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {self.path}: must be a mapping of settings")
        return {str(k).replace("-", "_"): v for k, v in data.items()}


class AgentSettings(BaseSettings):
    """Everything ``podium agent`` can be told."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_", extra="forbid")

    repo: str = Field(min_length=1, description="Repository URL or local path.")
    branch: str | None = None
    path: str = ""
    state: Path | None = None
    data_dir: Path = Path(".podium")
    interval: Seconds = 30.0
    listen: str | None = None
    webhook_secret: SecretStr | None = None
    gitlab_token: SecretStr | None = None
    max_parallel: int = Field(default=32, ge=1, le=1024)
    shutdown_grace: Seconds = 3.0
    """Fits ``docker stop``'s 10 s with the tasks' own TERM-to-KILL grace (5 s)."""
    secrets_dir: Path | None = None
    log_retention_days: float | None = Field(default=90.0, ge=0)
    """Task logs of runs that finished longer ago than this are deleted (None: never)."""
    log_retention_runs: int | None = Field(default=None, ge=0)
    """Only the task logs of this many newest finished runs are kept (None: no limit)."""
    wait_lease: bool = False
    containment: Literal["auto", "cgroup2", "proc-marker"] = "auto"
    """How task attempts are contained (see podium.runners.containment)."""
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < 0.1:
            raise ValueError("interval must be at least 100ms")
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):\d{1,5}", value):
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        if not 0 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise ValueError(f"port out of range in {value!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls, _CONFIG_FILE[0]))

    @property
    def host_port(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def state_path(self) -> Path:
        return (self.state or self.data_dir / "state.db").absolute()

    def masked(self) -> dict[str, Any]:
        """Effective settings for display: secrets masked, credentials in URLs masked."""
        from podium.source.git import mask_url

        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, str):
                out[name] = mask_url(value)
            else:
                out[name] = value
        out["state"] = str(self.state_path)
        return out


def load_settings(flags: dict[str, Any], config_file: Path | None = None) -> AgentSettings:
    """Build settings with precedence flags > ``PODIUM_*`` env > config file > defaults."""
    given = {k: v for k, v in flags.items() if v is not None}
    _CONFIG_FILE[0] = config_file
    try:
        settings = AgentSettings(**given)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = f"required (--{name.replace('_', '-')} or PODIUM_{name.upper()})"
        elif err["type"] == "string_too_short":
            msg = "must not be empty"
        elif err["type"] == "extra_forbidden":
            msg = "unknown setting"
        raise ConfigError(f"invalid setting {name}: {msg}") from exc
    return settings


__all__ = ["AgentSettings", "load_settings"]
