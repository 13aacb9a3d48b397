"""Event handlers of the core app (imported by CoreConfig.ready to register them)."""

from . import webhooks  # noqa: F401
