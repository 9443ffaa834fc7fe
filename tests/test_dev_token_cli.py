"""``python -m app.auth.dev_token`` as a user runs it. Apart from test_auth_tokens.py because it starts a
Python process: mutation testing (make mutation) runs test_auth_tokens.py, and a child process cannot
report to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt

from app.auth.tokens import Principal, build_verifier
from tests.test_auth_tokens import dev_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


async def test_dev_token_cli_prints_a_token_that_verifies(tmp_path: Path) -> None:
    key_path = tmp_path / "cli" / "key.pem"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    result = subprocess.run(
        [
            sys.executable, "-m", "app.auth.dev_token",
            "--username", "alice", "--roles", "get-authors, create-author",
            "--sub", "sub-1", "--ttl", "600", "--key", str(key_path),
        ],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=env, timeout=60,
    )  # fmt: skip
    token = result.stdout.strip()
    assert "\n" not in token
    principal = await build_verifier(dev_settings(key_path)).verify(token)
    assert principal == Principal("sub-1", "alice", frozenset({"get-authors", "create-author"}))
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert abs(exp - (time.time() + 600)) < 60
