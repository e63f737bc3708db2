"""``kdrec evaluate``: full-ranking, leave-one-out evaluation of a model on a dataset."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from cli.context import friendly_errors, settings
from core.data.catalog import DatasetNotFound, load_dataset
from core.data.errors import DataFormatError
from core.data.split import leave_one_out
from core.evaluation import evaluate as run_evaluation
from core.evaluation.report import metrics_table, write_json
from core.models.popularity import Popularity

app = typer.Typer()


def popularity_metrics(dataset_name: str, split: str = "test") -> dict[str, dict[str, float]]:
    """Evaluate the popularity baseline; used by `kdrec evaluate` and the demo."""
    config = settings()
    data = load_dataset(dataset_name, config.data_dirs, text_columns=config.text_columns)
    folds = leave_one_out(data)
    train = folds.train_for_test() if split == "test" else folds.train
    model = Popularity(data.num_items).fit(train)
    return {"popularity": run_evaluation(model, folds.test if split == "test" else folds.valid)}


@app.command()
@friendly_errors(DatasetNotFound, DataFormatError, FileNotFoundError)
def evaluate(
    model: str = typer.Option("popularity", help="popularity, teacher, student, or an artifact folder."),
    dataset: str = typer.Option(None, help="Dataset name or folder (default: settings' dataset)."),
    split: str = typer.Option("test", help="test or valid (leave-one-out targets)."),
    output: Path = typer.Option(None, help="JSON output path (default var/results/<dataset>-<model>.json)."),
) -> None:
    """Evaluate with full ranking over all items, leave-one-out, seen items removed; print a table and write JSON."""
    config = settings()
    name = dataset or config.dataset
    started = time.perf_counter()
    if model == "popularity":
        rows = popularity_metrics(name, split)
    else:
        from cli.neural_eval import neural_metrics  # the neural models (teacher/student/artifact)

        rows = neural_metrics(model, name, split, config)
    typer.echo(f"{name}, {split} targets, full ranking over all items, seen items removed")
    typer.echo(metrics_table(rows))
    path = output or Path("var/results") / f"{Path(name).name}-{Path(model).name}-{split}.json"
    write_json(
        path, {"dataset": name, "split": split, "metrics": rows, "seconds": round(time.perf_counter() - started, 2)}
    )
    typer.echo(f"wrote {path}")
