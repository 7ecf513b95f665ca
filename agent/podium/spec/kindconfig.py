"""Configuration models of the built-in task kinds (``run``, ``http``, ``python``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _check_command(value: str) -> str:
    if not value.strip():
        raise ValueError("command must not be empty")
    return value


def _check_target(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
        shown = repr(value if len(value) <= 60 else value[:57] + "...")
        raise ValueError(f"python task must be 'module:function', got {shown}")
    return value


ShellCommand = Annotated[str, AfterValidator(_check_command)]
PythonTarget = Annotated[str, AfterValidator(_check_target)]


class HttpSpec(BaseModel):
    """An HTTP request made with httpx. Succeeds when the status is in ``expect``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(pattern=r"^https?://\S+$")
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    expect: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    follow_redirects: bool = False


__all__ = ["HttpSpec", "PythonTarget", "ShellCommand"]
