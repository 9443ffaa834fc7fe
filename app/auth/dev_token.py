"""Print a development access token: ``python -m app.auth.dev_token --username alice --roles get-authors``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.auth.dev_issuer import DevIssuer
from app.settings import get_settings


def main(argv: Sequence[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m app.auth.dev_token", description=__doc__)
    parser.add_argument("--username", required=True)
    parser.add_argument("--roles", default="", help="comma-separated realm roles: get-authors,create-author")
    parser.add_argument("--sub", default=None, help="user id (default: derived from the username)")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    parser.add_argument("--audience", default=settings.auth_audience, help="`aud` (default: AUTH_AUDIENCE)")
    parser.add_argument("--key", default=settings.dev_issuer_key_path, help="dev issuer private key file")
    args = parser.parse_args(argv)
    roles = [role.strip() for role in args.roles.split(",") if role.strip()]
    issuer = DevIssuer.load_or_create(args.key)
    print(issuer.mint(args.username, roles, sub=args.sub, ttl_seconds=args.ttl, audience=args.audience))
    return 0


if __name__ == "__main__":
    sys.exit(main())
