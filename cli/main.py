"""``kdrec``: one console script, one typer sub-app or command per module under ``cli/``."""

from __future__ import annotations

import importlib
import logging

import typer

from cli.context import configure_logging

app = typer.Typer(
    name="kdrec",
    help="kdrec: a streaming, real-time sequential recommender (LM teacher distilled into a small student).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# (module, sub-command group name or None for top-level commands)
COMMANDS: list[tuple[str, str | None]] = [
    ("cli.data", "data"),
    ("cli.db", "db"),
    ("cli.evaluate", None),
    ("cli.demo", None),
    ("cli.broker", None),
    ("cli.replay", None),
    ("cli.consume", None),
    ("cli.traffic", None),
    ("cli.train", "train"),
    ("cli.jobs", "jobs"),
    ("cli.models", "models"),
    ("cli.items", "items"),
    ("cli.scheduler", None),
]

for module_name, group in COMMANDS:
    module = importlib.import_module(module_name)
    if group is None:
        app.registered_commands.extend(module.app.registered_commands)
    else:
        app.add_typer(module.app, name=group)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level.")) -> None:
    """kdrec: a streaming, real-time sequential recommender."""
    configure_logging(logging.DEBUG if verbose else None)


if __name__ == "__main__":
    app()
