"""Launch files, parameter files and evaluation tools that start the emotion robot as one system."""
