"""Per-frame and per-block features computed at the edge, on the producer side."""
