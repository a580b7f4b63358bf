"""Camera and microphone nodes, face detection and tracking, and the vision and vocal encoders of the
emotion robot."""
