"""Tracker node: selects a face and closes the loop on the Arduino pan/tilt servos over serial or
micro-ROS."""
