"""`avsync monitor`: many live streams, one producer thread each, live estimates,
Prometheus metrics and a terminal view.

- `config`: the streams to watch (arguments or a TOML file).
- `tracker`: per-window measurements -> the current offset, confidence, drift, jumps.
- `stream`: one stream's life: open, measure, fail, back off, reconnect.
- `metrics`: the Prometheus collector and the HTTP server (/metrics, /healthz).
- `view`: the live table, or log lines.
"""
