"""Shared fixtures for the workspace and toolpack unit tests (tmp_path only, no DB)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from runtime.settings import Settings, load_settings
from runtime.tools import ToolContext, Toolpack
from runtime.workspace import Workspace


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(data_dir=tmp_path / "data", **overrides)


def make_context(workspace: Workspace, checkpoints: Any = None) -> ToolContext:
    return ToolContext(
        run_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        app_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        workspace=workspace,
        checkpoints=checkpoints,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def workspace(settings: Settings) -> Workspace:
    return Workspace(settings.runs_dir / "run" / str(uuid.uuid4()))


@pytest.fixture
def ctx(workspace: Workspace) -> ToolContext:
    return make_context(workspace)


@pytest.fixture
def toolpack(settings: Settings) -> Toolpack:
    return Toolpack(settings)
