"""Turning per-item measurements into offsets, confidence and drift."""
