"""What every command needs: settings read once, logging set up, friendly errors."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

import typer

from core.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., object])
_level: int | None = None


def configure_logging(level: int | None = None) -> None:
    global _level
    _level = level
    logging.basicConfig(
        level=level or logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("kafka", "urllib3", "httpx", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def settings(**overrides: object) -> Settings:
    """Settings from the environment; invalid ones end the program with a clear message."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def friendly_errors(*errors: type[BaseException]) -> Callable[[F], F]:
    """Turn the given exception types into a one-line error and exit code 1 (no traceback)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: object, **kwargs: object) -> object:
            try:
                return func(*args, **kwargs)
            except errors as exc:
                raise fail(str(exc)) from None

        return wrapper  # type: ignore[return-value]

    return decorate
