"""healthmon: real-time service health monitor."""

__version__ = "0.1.0"
