"""The ``synthex`` command line: providers upload and watch certification, buyers buy and verify.

One module per command group (account, products, versions, signed, buying, downloads), the parser in
``parser`` and the helpers every command shares in ``common``; ``main`` runs a command and maps its errors
to the exit status.

Exit status (also in docs/cli.md):
  0  done; every check held
  1  a check failed (signature, hash, proof), a job failed, a payment did not complete
  2  usage error or unreadable local input (bad flag, missing file, not JSON)
  3  the API refused the request (HTTP 4xx): the message is the API's ``detail`` and ``code``
  4  the server failed (HTTP 5xx) or could not be reached
  130 interrupted (Ctrl-C); an interrupted upload resumes when the same command runs again
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from rich.console import Console

from synthex_client import uploads
from synthex_client.api import ApiError, ClientError, ServerError
from synthex_client.cli.common import (
    EXIT_API,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SERVER,
    EXIT_USAGE,
    CheckFailed,
    Context,
    UsageError,
)
from synthex_client.cli.downloads import FileSink as _FileSink  # the name tests/cli/test_cli_fetch.py imports
from synthex_client.cli.parser import build_parser

__all__ = ["_FileSink", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (module docstring)."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code in (0, None) else EXIT_USAGE
    terminal = sys.stdout.isatty()
    context = Context(
        arguments,
        # Server text (titles, error details) may hold brackets: no console markup, styles passed explicitly.
        Console(highlight=False, markup=False, soft_wrap=not terminal, width=None if terminal else 160),
        Console(stderr=True, highlight=False, markup=False, soft_wrap=True),
    )
    try:
        return int(arguments.handler(context))
    except UsageError as error:
        return _fail(context, EXIT_USAGE, "usage", str(error))
    except CheckFailed as error:
        return _fail(context, EXIT_FAILED, "failed", str(error))
    except uploads.UploadFailed as error:
        return _fail(context, EXIT_FAILED, "upload_failed", str(error))
    except ApiError as error:
        return _fail(context, EXIT_API, error.code, error.detail, status=error.status)
    except ServerError as error:
        code = "server_error" if error.status else "unreachable"
        return _fail(context, EXIT_SERVER, code, error.detail, status=error.status or None)
    except ClientError as error:
        return _fail(context, EXIT_SERVER, "client_error", str(error))
    except KeyboardInterrupt:
        return _fail(
            context, EXIT_INTERRUPTED, "interrupted", "Interrupted; run the same command again to resume."
        )


def _fail(context: Context, exit_status: int, code: str, detail: str, *, status: int | None = None) -> int:
    """Say what went wrong on stderr (and as ``{"error": ...}`` on stdout with ``--json``)."""
    if context.as_json:
        print(
            json.dumps(
                {"error": {"code": code, "detail": detail, "http_status": status, "exit": exit_status}}
            )
        )
    suffix = f" (HTTP {status}, code {code})" if status else ""
    context.err.print(f"error: {detail}{suffix}", style="red")
    return exit_status
