#!/usr/bin/env python3
"""Export facenet-pytorch's MTCNN nets to src/emotion_runtime/models/face_detector/*.onnx.

Needs the optional `pip install --no-deps facenet-pytorch` (see emotion_training.mtcnn_onnx).
    source scripts/env.sh; python training/scripts/convert_mtcnn.py
"""
import sys

from emotion_training.mtcnn_onnx import main

if __name__ == '__main__':
    sys.exit(main())
