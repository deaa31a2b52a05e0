"""``synthex login`` and ``synthex logout``: the saved server URL and API token."""

from __future__ import annotations

import getpass
import sys

from synthex_client import config
from synthex_client.api import SynthexClient
from synthex_client.cli.common import EXIT_OK, Context, UsageError


def cmd_login(context: Context) -> int:
    arguments = context.arguments
    url = context.settings().url
    token = arguments.token
    if arguments.token_stdin:
        token = sys.stdin.readline().strip()
    elif not token:
        if not sys.stdin.isatty():
            raise UsageError("Give the token with --token or --token-stdin (stdin is not a terminal).")
        token = getpass.getpass(f"API token for {url} (from {url}/accounts/token/): ").strip()
    if not token:
        raise UsageError("The token is empty.")
    with SynthexClient(url, token) as api:
        api.search_products(page=1)  # an unknown token is refused with 401 on any endpoint
    path = config.save_login(url, token)
    context.emit(
        {"url": url, "config": str(path)},
        lambda: context.out.print(f"Logged in to {url}; the token is saved in {path} (mode 0600)."),
    )
    return EXIT_OK


def cmd_logout(context: Context) -> int:
    path = config.forget_login()
    context.emit({"config": str(path)}, lambda: context.out.print(f"The token is removed from {path}."))
    return EXIT_OK
