"""The errors a user can cause from the command line, and their one-line messages.

- ``ConfigError`` (config): a setting is wrong.
- ``StoreError`` / ``StoreLocked`` (storage.store): the --db file cannot be used.
- ``AddressInUse`` (receiver.grpc_server): a listen address is taken.
- ``DecodeWorkersFailed`` (receiver.decode_pool): decode workers keep dying, ``serve`` stops.
- ``SqlClientError`` (sql_client): the server refused a query or did not answer.
- ``ExportError`` (export_spec): an export's arguments, directory, store or server.
- ``RuleFileError``, ``RuleTestFailure``, ``BacktestError`` (alerting.errors): rules files,
  rule tests and backtests.
"""

from __future__ import annotations

from otel_hms.alerting.errors import BacktestError, RuleFileError, RuleTestFailure
from otel_hms.cli.sql import SqlClientError
from otel_hms.config import ConfigError
from otel_hms.export.spec import ExportError
from otel_hms.receiver.decode_pool import DecodeWorkersFailed
from otel_hms.receiver.grpc_server import AddressInUse
from otel_hms.storage.store import StoreError

USER_ERRORS = (ConfigError, StoreError, AddressInUse, SqlClientError, RuleFileError,
               RuleTestFailure, BacktestError, ExportError, DecodeWorkersFailed)


def user_message(exc: BaseException) -> str | None:
    """The text to print for an error the user can fix, or None for a bug."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    return None
