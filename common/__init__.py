"""The small pieces every room shares: one body for each.

Durations (``durations``), ``${ENV}`` expansion (``env``), the YAML files a person writes
(``yaml_file``) and the typed reading of their fields with every problem noted
(``yaml_fields``), time arithmetic on the UTC epoch (``times``) and the bearer token check
(``auth``).  This room is the ground floor: it imports nothing of otel-hms, and every other
room may import it.
"""
