"""The bearer token guarding REST order entry: from config, or generated once per start.

When ``matching.api_token`` is unset the desk generates a random token at startup and writes it to
``<data_dir>/api.token`` with mode 0600, so a local operator (the file's owner) can read it and nobody
else can. Only the file's path is ever logged; the token itself is registered for log redaction.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from engines.logs import register_secret

log = logging.getLogger(__name__)

TOKEN_FILE = "api.token"


def load_or_create_token(configured: SecretStr | None, data_dir: Path) -> SecretStr:
    if configured is not None and configured.get_secret_value():
        register_secret(configured.get_secret_value())
        return configured
    value = secrets.token_urlsafe(32)
    register_secret(value)
    path = data_dir / TOKEN_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    # O_CREAT with 0600 so the token is never readable by others, even for an instant; fchmod in case
    # the file already existed with looser permissions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (value + "\n").encode())
    finally:
        os.close(fd)
    log.info("matching REST api token generated: see %s", path)
    return SecretStr(value)


def check_bearer(header: str | None, token: SecretStr) -> str | None:
    """None if ``header`` carries the token, else why not (never echoing what was sent)."""
    if not header:
        return "missing bearer token (Authorization: Bearer <token>)"
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return "authorization must use the Bearer scheme"
    if not hmac.compare_digest(value.strip().encode(), token.get_secret_value().encode()):
        return "invalid bearer token"
    return None
