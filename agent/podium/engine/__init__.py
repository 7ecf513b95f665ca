"""The run engine: a coordinator and the collaborators it delegates to (see
:mod:`podium.engine.coordinator`)."""

from __future__ import annotations

from podium.engine.config import EngineConfig
from podium.engine.coordinator import Engine

__all__ = ["Engine", "EngineConfig"]
