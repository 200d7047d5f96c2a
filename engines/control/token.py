"""The control API's bearer token: from config (``control.token``, a secret from the environment or
the secrets file) or, if unset, generated once into ``data_dir/control.token`` (mode 0600) where the
local CLI finds it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from engines.logs import register_secret

TOKEN_FILE = "control.token"
ADDRESS_FILE = "control.json"


def resolve_token(configured: SecretStr | None, data_dir: Path) -> str:
    if configured is not None and configured.get_secret_value():
        token = configured.get_secret_value()
    else:
        path = data_dir / TOKEN_FILE
        token = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        if not token:
            token = secrets.token_urlsafe(32)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(token + "\n")
        os.chmod(path, 0o600)  # also tighten a file someone created by hand
    register_secret(token)
    return token
