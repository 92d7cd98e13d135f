"""``otel-hms export``: the stored points as hive-partitioned Parquet.

``spec`` (what one export covers, parsed the same way from flags and from the HTTP body),
``parquet`` (reading the views in Arrow batches and writing the hour files) and ``files``
(the dataset's directory: its lock, atomic replacement, rows kept from earlier exports).
"""
