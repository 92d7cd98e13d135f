"""A small blocking gRPC unary client over HTTP/2 (the ``h2`` package) that sends messages
compressed ahead of time.

grpcio compresses each message itself, in the calling process, during the call; a benchmark
that wants the bytes a Collector with ``compression: gzip`` puts on the wire, without the
clients spending CPU on gzip while the server is timed, gzips the messages beforehand and
sends them with the compressed flag set and ``grpc-encoding: gzip``.  One call at a time
per channel, as a Collector exporter queue consumer sends; flow control, PINGs, trailers
(``grpc-status``, ``grpc-message``, ``grpc-status-details-bin`` with ``RetryInfo``) and
trailers-only error answers are handled; anything else on the connection is an error for
the caller (``GrpcError``) to retry on a new channel.
"""

from __future__ import annotations

import base64
import gzip
import socket
import struct
import time
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions

# gRPC status codes (grpc/status.h)
OK, CANCELLED, UNKNOWN, DEADLINE_EXCEEDED = 0, 1, 2, 4
RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS = 8, 10, 11, 14, 15
CODE_NAMES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT",
              4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS",
              7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
              10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL",
              14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
# What the Collector's exporter retries (RESOURCE_EXHAUSTED only when RetryInfo says when).
RETRYABLE = {CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS}
# HTTP statuses of answers that are not gRPC, as gRPC clients map them.
_HTTP_CODES = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


class GrpcError(Exception):
    """A call that did not end with status OK."""

    def __init__(self, code: int, message: str, retry_after: float | None = None,
                 connection_lost: bool = False) -> None:
        super().__init__(f"{CODE_NAMES.get(code, code)}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after  # RetryInfo's delay, if the server sent one
        self.connection_lost = connection_lost  # the channel is unusable: open a new one

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE or (self.code == RESOURCE_EXHAUSTED
                                          and self.retry_after is not None)


def _retry_delay(details_b64: bytes) -> float | None:
    """RetryInfo's delay from a ``grpc-status-details-bin`` trailer (a google.rpc.Status)."""
    from google.rpc import error_details_pb2, status_pb2

    padded = details_b64 + b"=" * (-len(details_b64) % 4)  # sent without padding
    status = status_pb2.Status.FromString(base64.b64decode(padded))
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


class Channel:
    """One HTTP/2 connection to a gRPC server; ``unary`` makes one call at a time."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.authority = f"{host}:{port}".encode()
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self._flush()

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        except OSError:
            pass
        self.sock.close()

    def unary(self, path: str, message: bytes, compressed: bool, timeout: float) -> bytes:
        """Send one message (already gzipped if ``compressed``); the answer's message bytes.

        Raises ``GrpcError`` for any status but OK, and for a lost connection or timeout.
        """
        deadline = time.monotonic() + timeout
        try:
            sid = self.conn.get_next_available_stream_id()
            headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                       (b":authority", self.authority), (b"te", b"trailers"),
                       (b"content-type", b"application/grpc"),
                       (b"grpc-accept-encoding", b"identity,gzip"),
                       (b"grpc-timeout", f"{max(1, int(timeout * 1000))}m".encode()),
                       (b"user-agent", b"otel-hms-bench grpc-h2")]
            if compressed:
                headers.append((b"grpc-encoding", b"gzip"))
            self.conn.send_headers(sid, headers)
            self._send_body(sid, struct.pack(">BI", int(compressed), len(message)) + message,
                            deadline)
            return self._answer(sid, deadline)
        except (OSError, h2.exceptions.H2Error) as exc:
            raise GrpcError(UNAVAILABLE, f"connection lost: {type(exc).__name__}: {exc}",
                            connection_lost=True) from None

    def _send_body(self, sid: int, body: bytes, deadline: float) -> None:
        view = memoryview(body)
        sent = 0
        while sent < len(body):
            room = min(self.conn.local_flow_control_window(sid),
                       self.conn.max_outbound_frame_size, len(body) - sent)
            if room <= 0:  # wait for the server's WINDOW_UPDATE
                self._flush()
                self._receive(deadline, sid)
                continue
            self.conn.send_data(sid, bytes(view[sent:sent + room]),
                                end_stream=sent + room == len(body))
            sent += room
        self._flush()

    def _answer(self, sid: int, deadline: float) -> bytes:
        headers: dict[bytes, bytes] = {}
        data = bytearray()
        ended = False
        while not ended:
            for event in self._receive(deadline, sid):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    headers.update(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamReset):
                    raise GrpcError(UNAVAILABLE, f"stream reset (error {event.error_code})")
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
        self._flush()
        http_status = int(headers.get(b":status", b"0"))
        if b"grpc-status" not in headers:
            raise GrpcError(_HTTP_CODES.get(http_status, UNKNOWN),
                            f"HTTP {http_status} without grpc-status")
        code = int(headers[b"grpc-status"])
        if code != OK:
            details = headers.get(b"grpc-status-details-bin")
            raise GrpcError(code, unquote(headers.get(b"grpc-message", b"").decode()),
                            _retry_delay(details) if details else None)
        if len(data) < 5:
            return b""
        flag, length = struct.unpack_from(">BI", data)
        payload = bytes(data[5:5 + length])
        return gzip.decompress(payload) if flag else payload

    def _receive(self, deadline: float, sid: int) -> list[h2.events.Event]:
        """Read what the server sent (answering PINGs and SETTINGS); its events."""
        left = deadline - time.monotonic()
        if left <= 0:
            self.conn.reset_stream(sid, 0x8)  # CANCEL
            self._flush()
            raise GrpcError(DEADLINE_EXCEEDED, "no answer in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise GrpcError(DEADLINE_EXCEEDED, "no answer in time",
                            connection_lost=True) from None
        if not chunk:
            raise GrpcError(UNAVAILABLE, "server closed the connection", connection_lost=True)
        events = self.conn.receive_data(chunk)
        for event in events:
            if isinstance(event, h2.events.ConnectionTerminated):
                raise GrpcError(UNAVAILABLE, f"GOAWAY (error {event.error_code})",
                                connection_lost=True)
        self._flush()
        return list(events)

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)
