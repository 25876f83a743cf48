"""Grades the multiprocessing kata: hidden tests run student code in sandboxes."""

__version__ = "0.1.0"
