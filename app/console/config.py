"""Console settings (``ACCESSGOV_CONSOLE__*``): the ``console`` section of ``app.config.Settings``.

The models live in ``app.config`` with the other sections; production refuses the placeholder key when
the settings are read, at start. Here: the section of a ``Settings``, checked for its environment.
"""

from __future__ import annotations

from app.config import (
    CONSOLE_KEY_PLACEHOLDER,
    ConsoleIdP,
    ConsoleSettings,
    Settings,
    check_console_settings,
)

SECRET_KEY_PLACEHOLDER = CONSOLE_KEY_PLACEHOLDER
__all__ = ["SECRET_KEY_PLACEHOLDER", "ConsoleIdP", "ConsoleSettings", "check_console_settings", "console_settings"]


def console_settings(settings: Settings) -> ConsoleSettings:
    """The console section of ``settings``, checked against its environment (ValueError)."""
    check_console_settings(settings.console, settings.environment)
    return settings.console
