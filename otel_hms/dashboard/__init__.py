"""The browser dashboard: explore metrics, watch them live, alerts, SLOs and a SQL console.

``routes`` serves the page (``static/``) and ``GET /api/v1/dashboards``; ``spec`` reads the
YAML dashboards of ``--dashboards DIR``.  ``EXAMPLE_DASHBOARDS`` is the directory holding the
parking-permit demo's dashboard.
"""

from __future__ import annotations

from pathlib import Path

from .routes import routes as dashboard_routes
from .spec import Dashboard, DashboardError, Panel, Threshold, load_dashboards, parse_dashboard

EXAMPLE_DASHBOARDS = Path(__file__).resolve().parent.parent / "demo" / "dashboards"

__all__ = ["EXAMPLE_DASHBOARDS", "Dashboard", "DashboardError", "Panel", "Threshold",
           "dashboard_routes", "load_dashboards", "parse_dashboard"]
