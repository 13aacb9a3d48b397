"""Watchkeeper: one operations platform for Managed IT Service Providers."""

__version__ = "0.1.0"
