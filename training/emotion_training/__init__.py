"""Offline training, export and evaluation of the emotion robot models (no ROS needed)."""
