"""Torch-free model runtime of the emotion robot; see README.md. Only node_kit imports rclpy."""
