"""``kdrec data``: fetch MovieLens from GroupLens and inspect datasets."""

from __future__ import annotations

import typer

from cli.context import friendly_errors, settings
from core.data.catalog import DatasetNotFound, load_dataset
from core.data.errors import DataFormatError
from core.data.fetch import REMOTES, FetchError
from core.data.fetch import fetch as fetch_dataset

app = typer.Typer(help="Fetch and inspect datasets.", no_args_is_help=True)


@app.command()
@friendly_errors(FetchError)
def fetch(
    name: str = typer.Argument(..., help=f"Dataset to download: {' or '.join(REMOTES)}."),
    timeout: float = typer.Option(30.0, help="Network timeout in seconds."),
) -> None:
    """Download a MovieLens archive from GroupLens into the download folder, verified by MD5."""
    config = settings()
    folder = fetch_dataset(name, config.download_dir, timeout)
    typer.echo(f"{name} is ready in {folder}")


@app.command()
@friendly_errors(DatasetNotFound, DataFormatError)
def info(
    dataset: str = typer.Argument(None, help="Dataset name (looked up in the data folders) or folder path."),
    min_interactions: int = typer.Option(0, help="Apply k-core filtering with this k (0: none)."),
) -> None:
    """Load a dataset and print its size."""
    config = settings()
    data = load_dataset(
        dataset or config.dataset, config.data_dirs, min_interactions or None, text_columns=config.text_columns
    )
    lengths = sorted(len(seq) for seq in data.sequences.values())
    typer.echo(f"dataset       {data.name}")
    for key, value in data.summary().items():
        typer.echo(f"{key:<13} {value:,}")
    typer.echo(f"median length {lengths[len(lengths) // 2]}")
    typer.echo(f"timestamps    {'yes' if data.timestamps is not None else 'no (sequence order)'}")
