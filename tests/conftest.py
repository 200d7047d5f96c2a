from __future__ import annotations

import os

import pytest

# Tests never touch the operator's real data directory or a stray OPDESK_* setting.
for _name in list(os.environ):
    if _name.startswith("OPDESK_"):
        del os.environ[_name]
# Desks built in tests bind ephemeral ports, never the fixed defaults a running desk may hold.
os.environ["OPDESK_CONTROL__PORT"] = "0"
os.environ["OPDESK_REMOTE__PORT"] = "0"


@pytest.fixture
def desk_env(tmp_path, monkeypatch):
    """Environment for a desk whose files live in tmp_path."""
    monkeypatch.setenv("OPDESK_DESK__DATA_DIR", str(tmp_path))
    return tmp_path
