"""The operator's listener, served by the control process: the JSON API (docs/admin-api.md), Prometheus
/metrics, and the live dashboard (static/). Nothing here is imported by the data plane; the web
framework is imported only by the modules that serve (app.py, server.py), so `shieldwall admin`'s
commands stay quick."""
