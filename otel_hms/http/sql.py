"""``POST /api/v1/sql``: one user query, bounded, stopped when its client goes away.

The request's ``Deadline`` starts as it arrives, so the time limit covers waiting for a
worker thread, running, fetching and encoding (``sql_query.answer_json``).  While the query
runs, the handler also waits for the client to disconnect; if it does, DuckDB's work is
interrupted at once rather than finishing for nobody.  ``SqlStats`` counts what happened,
for ``GET /api/v1/status``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from otel_hms.query.deadline import Deadline, QueryCancelled, QueryError, QueryTimedOut, TooLarge
from otel_hms.query.read_only import SqlLimits, answer_json
from otel_hms.settings import Settings
from otel_hms.storage.connection import Cursors

log = logging.getLogger("otel_hms.sql")
BODY_HELP = 'body must be JSON: {"sql": "SELECT ..."}'


@dataclass
class SqlStats:
    """User queries on the SQL endpoint since start."""
    running: int = 0
    answered: int = 0
    refused: int = 0  # 400: not read-only, or failed
    too_large: int = 0  # 413: over sql_max_answer_bytes or DuckDB's memory_limit
    timed_out: int = 0  # over sql_timeout_seconds
    cancelled: int = 0  # the client disconnected first

    def as_json(self) -> dict[str, int]:
        return asdict(self)


async def _disconnected(request: Request) -> None:
    """Return once the client has gone (the body is read: nothing else can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def sql_endpoint(con: Cursors, settings: Settings,
                 authorized: Callable[[Request], bool], unauthorized: Callable[[], Response],
                 stats: SqlStats) -> Callable[[Request], Any]:
    limits = SqlLimits(settings.sql_row_limit, settings.sql_max_answer_bytes)

    def error(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status)

    async def sql(request: Request) -> Response:
        deadline = Deadline(settings.sql_timeout_seconds)
        if not authorized(request):
            return unauthorized()
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, BODY_HELP)
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
            return error(400, BODY_HELP)
        stats.running += 1
        work = asyncio.ensure_future(asyncio.to_thread(answer_json, con, body["sql"], deadline,
                                                       limits))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                deadline.cancel("the client disconnected")
            answer = await work  # the interrupted query ends within moments
        except TooLarge as exc:
            stats.too_large += 1
            return error(413, str(exc))
        except QueryCancelled as exc:
            stats.cancelled += 1
            log.info("SQL endpoint: %s", exc)
            return error(400, str(exc))
        except QueryTimedOut as exc:
            stats.timed_out += 1
            return error(400, str(exc))
        except QueryError as exc:
            stats.refused += 1
            return error(400, str(exc))
        finally:
            gone.cancel()
            stats.running -= 1
        stats.answered += 1
        return Response(answer, media_type="application/json")

    return sql
