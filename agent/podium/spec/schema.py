"""JSON Schemas of workflow files and ``podium.yaml`` (for editors and CI)."""

from __future__ import annotations

from typing import Any

from podium.spec.models import RepoConfig, workflow_model

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def workflow_schema() -> dict[str, Any]:
    schema = workflow_model().model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = SCHEMA_URI
    schema["title"] = "Podium workflow"
    schema["description"] = "One workflow file under workflows/ of a Podium repository."
    return schema


def config_schema() -> dict[str, Any]:
    schema = RepoConfig.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = SCHEMA_URI
    schema["title"] = "Podium repository configuration (podium.yaml)"
    return schema


__all__ = ["config_schema", "workflow_schema"]
