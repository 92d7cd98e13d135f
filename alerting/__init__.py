"""SQL-defined alert rules, their evaluation and state (see the alerting issue)."""

__all__: list[str] = []
