"""The one exception root of jitwatch, and the errors that cross module lines."""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "JitwatchError", "PolicyError"]


class JitwatchError(Exception):
    """Root of every error jitwatch raises on purpose."""


class InputError(JitwatchError):
    """An input record could not be accepted; ``error_class`` names the kind for dead letters."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


class PolicyError(JitwatchError):
    """A policy text is invalid; the message names each bad field, where it is and the fix."""


class ConfigError(JitwatchError):
    """A setting is invalid or a required one is missing."""
