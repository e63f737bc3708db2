"""Quality benchmark: does distillation pay? Popularity, the student alone, the LM teacher and
its random-init twin, and the student with KD, with KD from the twin (the control), with its item
table from the teacher's (embedding transfer) and with both (bench.quality_models.ROWS).

    .venv/bin/python -m bench.quality --profile cpu --dataset amazon-toys   # ~90 min on 2 cores
    .venv/bin/python -m bench.quality --profile full --device cuda --dataset ml-1m
    .venv/bin/python -m bench.quality --profile cpu --study all   # objective, items, dropout, KD alpha/T

Full ranking over all items, leave-one-out, seen items removed, test targets; metrics overall
and per popularity bucket of the target. Every model trains until validation NDCG@10 stops
improving (the profile's time caps are a safety net). Writes bench/results/quality-<dataset>.md
and .json, the dataset's name without dashes (quality-amazontoys, quality-ml1m; studies:
quality-<dataset>-selection.*). Trained models are kept under var/artifacts/bench/ and reused
by later runs with the same settings (--retrain to train again). The teacher objective, its
item representation, its dropout and the KD alpha/T come from the selection study when its
results exist for this profile (picked by validation NDCG@10), else the profile's defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.quality_models import Models
from bench.quality_parallel import setup
from bench.quality_profiles import PROFILES, Profile
from bench.quality_studies import STUDIES, Studies
from bench.quality_table import Table
from core.data.catalog import load_dataset
from core.data.dataset import Dataset
from core.data.split import LeaveOneOut, leave_one_out
from core.models.artifacts import load_model, read_metrics, save_model
from core.models.base import SequenceModel
from core.settings import load_settings
from core.training.recipes import TrainResult, teacher_cache, train_teacher

log = logging.getLogger("bench.quality")
RESULTS = Path(__file__).resolve().parent / "results"


class Bench(Studies, Models, Table):
    """One benchmark run: its data, profile, artifacts and selection (the parts are mixed in)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = args.device
        settings = load_settings()
        data = load_dataset(args.dataset, settings.data_dirs, text_columns=settings.text_columns)
        profile = PROFILES[args.profile].for_dataset(data.name)
        self.profile: Profile = profile.scaled(args.scale) if args.scale != 1.0 else profile
        if args.users:
            data = Dataset(data.name, data.items, {u: data.sequences[u] for u in sorted(data.sequences)[: args.users]})
        self.data = data
        self.folds: LeaveOneOut = leave_one_out(data)
        smoke = Path("var/bench-smoke")
        self.artifacts = (smoke if args.users else Path(settings.artifact_dir)) / "bench" / Path(args.dataset).name
        self.text_cache = Path(settings.artifact_dir) / "text-encodings"
        stem = f"quality-{Path(args.dataset).name.replace('-', '')}"
        self.out = Path(args.out) if args.out else (RESULTS / stem) if not args.users else smoke / stem
        self._selection = self._read_selection()  # read once: a study finishing meanwhile changes nothing
        # (a study's own later parts see its earlier winners: Studies.study updates it)
        self.started = time.perf_counter()
        self.served: dict[str, SequenceModel] = {}
        self._models: dict[Path, tuple[SequenceModel, dict[str, Any]]] = {}
        # Artifacts there before this run are "reused"; ones its worker processes train are not.
        self.preexisting = {path.name for path in self.artifacts.iterdir()} if self.artifacts.is_dir() else set()

    # --- training with reuse ---------------------------------------------------------------
    def trained(
        self, name: str, payload: dict[str, Any], train: Callable[[], TrainResult], reuse: bool = True
    ) -> tuple[SequenceModel, dict[str, Any]]:
        payload = {**payload, "data": self.data.summary(), "name": name, "clock": self.args.budget_clock}
        key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
        folder = self.artifacts / f"{name.replace(' ', '-').replace(',', '')}-{key}"
        if reuse and folder in self._models:  # loaded or trained by this process already
            return self._models[folder]
        if reuse and not self.args.retrain and (folder / "model.safetensors").is_file():
            log.info("reusing %s from %s", name, folder)
            self._models[folder] = (
                load_model(folder, self._device()),
                {**read_metrics(folder), "folder": str(folder), "reused": folder.name in self.preexisting},
            )
            return self._models[folder]
        result = train()
        meta = {
            "history": result.history.to_dict(),
            "train_seconds": result.seconds,
            "train_cpu_seconds": result.cpu_seconds,
            "valid": result.valid,
        }
        save_model(result.model, folder, metrics=meta, extra={"payload": payload})
        self._models[folder] = result.model, {**meta, "reused": False, "folder": str(folder)}
        return self._models[folder]

    def _device(self) -> str:
        return (
            "cuda"
            if self.device == "auto" and torch.cuda.is_available()
            else ("cpu" if self.device == "auto" else self.device)
        )

    def _train(self, config: Any) -> Any:
        return config.model_copy(update={"device": self.device})

    def teacher(self, config: Any, train: Any, name: str) -> tuple[SequenceModel, dict[str, Any]]:
        p = self.profile
        payload = {
            "teacher": config.model_dump(),
            "train": train.model_dump(),
            "windows": p.teacher_windows,
            "valid_users": p.teacher_valid_users,
        }
        return self.trained(
            name,
            payload,
            lambda: train_teacher(
                self.data.item_texts(),
                self.folds,
                config,
                self._train(train),
                self.text_cache,
                p.teacher_windows,
                p.teacher_valid_users,
                budget_clock=self.args.budget_clock,
            ),
        )

    def cache(self, teacher: SequenceModel, teacher_folder: str, keep_hidden: bool = False) -> tuple[Any, float]:
        """Teacher scores for the student's windows (built once, kept next to the artifacts) and
        the seconds it took to build them."""
        p = self.profile
        last = p.kd_last if teacher.objective == "causal" else p.kd_last_cloze
        name = (
            f"teacher-scores-{Path(teacher_folder).name}-L{p.student.max_len}-k{p.distill.top_k}"
            f"-last{last}{'-hidden' if keep_hidden else ''}"
        )
        timing = self.artifacts / f"{name}.json"
        started = time.perf_counter()
        cache = teacher_cache(
            teacher,
            self.folds,
            p.student.max_len,
            p.distill.top_k,
            p.temperatures,
            self.artifacts / f"{name}.safetensors",
            last=last,
            device=self.device,
            keep_hidden=keep_hidden,
        )
        if not timing.is_file():
            timing.write_text(json.dumps({"seconds": time.perf_counter() - started, "positions": len(cache.logits)}))
        return cache, json.loads(timing.read_text())["seconds"]

    # --- the selection study's winners ------------------------------------------------------
    def configs(self) -> tuple[Any, Any, dict[str, Any]]:
        """Teacher config and distillation config, from the selection study when it exists."""
        p, picked = self.profile, self.selection()
        teacher_config = p.teacher
        for part in ("objective", "items", "dropout"):
            if picked.get(part, {}).get("winner") is not None:
                teacher_config = teacher_config.model_copy(update={part: picked[part]["winner"]})
        distill = p.distill
        if picked.get("kd", {}).get("winner") and picked["kd"].get("student") == self.student_recipe():
            w = picked["kd"]["winner"]
            distill = distill.model_copy(
                update={
                    "alpha": w["alpha"],
                    "temperature": w["temperature"],
                    "hidden_weight": w.get("hidden_weight", 0.0),
                }
            )
        return teacher_config, distill, picked

    def student_recipe(self) -> dict[str, Any]:
        """What a KD study's winner holds for: the student and its training (budget included)."""
        return {"student": self.profile.student.model_dump(), "train": self.profile.student_train.model_dump()}

    def _read_selection(self) -> dict[str, Any]:
        path = self.out.parent / f"{self.out.name}-selection.json"
        if not path.is_file():
            return {}
        payload = json.loads(path.read_text())
        return payload if payload.get("profile") == self.profile.name else {}

    def selection(self) -> dict[str, Any]:
        """The selection study's results for this profile, as they were when the run started."""
        return self._selection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (training; serving speed is CPU)")
    parser.add_argument("--dataset", default="ml-1m", help="a dataset name (e.g. amazon-toys, ml-1m) or folder")
    parser.add_argument(
        "--study",
        choices=("none", *STUDIES, "all"),
        default="none",
        help="run a selection study instead of the table (all: each in turn)",
    )
    parser.add_argument("--retrain", action="store_true", help="ignore trained models under var/artifacts")
    parser.add_argument("--users", type=int, default=0, help="first N users only (smoke runs; results to var/)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every time budget (smoke runs)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is robust on a shared machine: no thread barriers)"
    )
    parser.add_argument(
        "--budget-clock",
        choices=("wall", "process"),
        default="process",
        help="time budgets count wall-clock or this process's CPU time (default: the "
        "same compute however busy the machine is)",
    )
    parser.add_argument(
        "--out", default=None, help="results path without suffix (default bench/results/quality-<dataset>)"
    )
    parser.add_argument(
        "--parallel", type=int, default=2, help="processes for independent parts (bench.quality_models.PLAN)"
    )
    args = parser.parse_args()
    setup(args)
    bench = Bench(args)
    if args.study != "none":
        bench.study(args.study)
    else:
        bench.main_table()


if __name__ == "__main__":
    main()
