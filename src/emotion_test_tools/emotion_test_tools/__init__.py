"""Shared test harness: isolated DDS domains, node processes, topic collectors."""
