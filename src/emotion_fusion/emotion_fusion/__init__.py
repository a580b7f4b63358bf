"""Fusion node: time-aligns vision and voice features, runs the per-face LSTM fusion head and
publishes emotion estimates."""
