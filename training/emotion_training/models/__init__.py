"""Torch model definitions shared by offline training and export (never imported by the nodes,
which run the exported ONNX through ``emotion_runtime.model_bundle``)."""
