"""OTLP metrics receiver: gRPC and HTTP endpoints that decode requests into columnar batches."""

from otel_hms.storage.batch import DecodedBatch, SeriesRow

from .decode import Decoder

__all__ = ["DecodedBatch", "Decoder", "SeriesRow"]
