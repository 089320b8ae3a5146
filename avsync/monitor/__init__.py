"""`avsync monitor`: many live streams, one producer thread each, live estimates,
Prometheus metrics and a terminal view.

- `config`: the streams to watch (arguments or a TOML file).
- `stream`: one stream's life: open, measure, fail, back off, reconnect (the live
  estimate itself is avsync.estimate.tracker).
- `metrics`: the Prometheus collector and the HTTP server (/metrics, /healthz).
- `view`: the live table, or log lines.
"""
