"""OTLP metrics receiver: gRPC and HTTP endpoints that decode requests into columnar batches."""

from .decode import DecodedBatch, Decoder, SeriesRow

__all__ = ["DecodedBatch", "Decoder", "SeriesRow"]
