"""For services: ``configure`` (the OpenTelemetry SDK set up in one line, ``instrument``) and
the embedded exporter that writes into a store file in this process (``embedded``)."""
