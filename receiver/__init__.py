"""The OTLP metrics receiver: gRPC and HTTP endpoints that decode requests into batches.

``grpc_server`` and ``http_server`` take exports, ``ingest`` authenticates, decodes and waits
for the commit, ``decode`` (with ``wire``, ``number_points``, ``histogram_points``) turns
request bytes into storage's ``DecodedBatch``, ``decode_pool`` does it in worker processes.
It imports storage (and common) only; a Prometheus remote-write endpoint would sit here.
"""

from otel_hms.storage.batch import DecodedBatch, SeriesRow

from .decode import Decoder

__all__ = ["DecodedBatch", "Decoder", "SeriesRow"]
