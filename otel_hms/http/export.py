"""``POST /api/v1/export``: the running server writes Parquet into a directory on its machine.

The server holds the store, so it runs the export itself (``parquet_export``), on a worker
thread and a cursor of its own, while ingest goes on.  The directory must be an absolute
path under ``export_root`` (by default ``exports/`` beside the store file), symlinks and
``..`` resolved first, so a client can never make the server write elsewhere.  Files are only
ever written under the names the export layout gives them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from otel_hms.export.parquet import run_export
from otel_hms.export.spec import ExportBusy, ExportError, ExportSpec, make_spec
from otel_hms.storage.connection import Cursors

BODY_HELP = ('body must be JSON: {"to": "/absolute/dir", "since": "24h", "until": "now", '
             '"kinds": ["gauge"], "metrics": ["name"]}')


def export_root(setting: str | None, db: str) -> str:
    """The directory exports are confined to: ``export_root`` if set, else ``exports/``
    beside the store file (created by the first export that writes)."""
    return setting or os.path.join(os.path.dirname(os.path.abspath(db)), "exports")


def parse_body(raw: bytes, root: str) -> ExportSpec:
    """The export a request asks for, checked like the CLI's flags, inside ``root``."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ExportError(BODY_HELP) from None
    if not isinstance(body, dict) or not isinstance(body.get("to"), str):
        raise ExportError(BODY_HELP)
    since, until = body.get("since", "24h"), body.get("until", "now")
    kinds, metrics = body.get("kinds") or [], body.get("metrics") or []
    if not (isinstance(since, str | int | float) and isinstance(until, str | int | float)
            and _strings(kinds) and _strings(metrics)):
        raise ExportError(BODY_HELP)
    if not os.path.isabs(body["to"]):
        raise ExportError(f"--to: {body['to']!r} must be an absolute path on the server's "
                          "machine")
    spec = make_spec(body["to"], str(since), str(until), kinds, metrics)
    real_root, real_to = os.path.realpath(root), os.path.realpath(spec.to)
    if os.path.commonpath([real_root, real_to]) != real_root:
        raise ExportError(f"--to: {spec.to} is outside the server's export_root {root}; "
                          "export into a directory under it")
    return spec


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def export_endpoint(con: Cursors, root: str,
                    authorized: Callable[[Request], bool],
                    unauthorized: Callable[[], Response]) -> Callable[[Request], Any]:
    """The Starlette handler: 200 with the files written, 400 bad input, 409 busy."""
    async def export(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        try:
            spec = parse_body(await request.body(), root)
            result = await asyncio.to_thread(run_export, con, spec)
        except ExportBusy as exc:
            return JSONResponse({"error": str(exc)}, 409)
        except ExportError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(result.as_json())
    return export
