"""Cold start: can items nobody has clicked be recommended from their text alone?

    .venv/bin/python -m bench.cold_start --dataset amazon-toys            # CPU profile
    .venv/bin/python -m bench.cold_start --dataset amazon-toys --latency  # + publish -> first list

A random 10% of the items is held out (bench.cold_start_split): every interaction with them is
removed from training, their text stays in the catalogue. The teacher and the served student
are trained as in the quality benchmark's profile (the student distilled from the teacher, as
``core.training.served`` does; embedding transfer as the profile pins it), on the known items
only. Then each held-out item gets a vector from its text alone: the student's text map
(``core.distill.text_map``, fitted on the known items and chosen on validation users; beside it
the best map without text neighbours and the best ridge-only map, to show what the neighbours and
the ranking epochs add), and, for comparison, the same kind of map fitted to the teacher's item
table. Full ranking over all items, seen items removed:

* cold users (test target a held-out item): HR@10 / NDCG@10 of the student's text map, of the
  teacher's, of popularity (which cannot rank an item nobody clicked) and of random (exact);
* warm users (the rest): the student with and without the held-out items' text vectors in the
  index, so the new vectors' cost to good recommendations shows.

With ``--latency``, bench.cold_start_latency publishes held-out items one by one to the embedded
broker and times each one's way into the serving index and to the first recommendation list
containing it.
Writes bench/results/cold-start-<dataset>.md and .json (dataset name without dashes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench import cold_start_report as report
from bench.cold_start_split import ColdSplit, cold_split
from bench.cold_start_tables import TableScorer, with_text_items
from bench.quality_profiles import PROFILES, Profile
from core.data.catalog import load_dataset
from core.data.dataset import item_counts
from core.distill.text_map import TextMap, fit_text_map
from core.evaluation.evaluator import rank_targets
from core.evaluation.metrics import metrics_from_ranks
from core.models.artifacts import load_model, read_metrics, save_model
from core.models.base import SequenceModel
from core.models.popularity import Popularity
from core.settings import load_settings
from core.training.recipes import TrainResult, teacher_cache, train_teacher, valid_subset
from core.training.served import ItemTexts, served_student, text_map_for

log = logging.getLogger("bench.cold_start")
RESULTS = Path(__file__).resolve().parent / "results"


class ColdBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        settings = load_settings()
        data = load_dataset(args.dataset, settings.data_dirs, text_columns=settings.text_columns)
        self.profile: Profile = PROFILES[args.profile].for_dataset(data.name)
        if args.scale != 1.0:
            self.profile = self.profile.scaled(args.scale)
        if args.plateau is not None:
            self.profile = replace(
                self.profile,
                teacher_train=self.profile.teacher_train.model_copy(update={"plateau_factor": args.plateau}),
                student_train=self.profile.student_train.model_copy(update={"plateau_factor": args.plateau}),
            )
        if args.transfer:
            distill = self.profile.distill.model_copy(update={"transfer": True})
            self.profile = replace(self.profile, distill=distill)
        self.split: ColdSplit = cold_split(data, args.share, args.seed)
        self.settings = settings
        self.text_cache = Path(settings.artifact_dir) / "text-encodings"
        self.artifacts = Path(settings.artifact_dir) / "bench" / f"cold-{Path(args.dataset).name}"
        stem = f"cold-start-{Path(args.dataset).name.replace('-', '')}"
        self.out = Path(args.out) if args.out else RESULTS / stem
        self.texts = ItemTexts(self.split.data.item_texts(), settings.teacher.checkpoint, self.text_cache)
        self.encodings, self.lm = self.texts.encodings()

    @staticmethod
    def _train_payload(config: Any) -> dict[str, Any]:
        """A training config as its artifact key: a plateau factor of 1 (no decay) is left out, so
        models trained before the setting existed keep their key."""
        dumped = config.model_dump()
        if dumped.get("plateau_factor") == 1.0:
            del dumped["plateau_factor"]
        return dumped

    def _folder(self, name: str, payload: dict[str, Any]) -> Path:
        blob = {
            **payload,
            "name": name,
            "share": self.args.share,
            "seed": self.args.seed,
            "data": self.split.data.summary(),
        }
        key = hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]
        return self.artifacts / f"{name}-{key}"

    def _kept(self, folder: Path, train: Any) -> tuple[SequenceModel, dict[str, Any]]:
        if not self.args.retrain and (folder / "model.safetensors").is_file():
            log.info("reusing %s", folder)
            return load_model(folder), read_metrics(folder)
        result: TrainResult = train()
        meta = {"history": result.history.to_dict(), "train_seconds": result.seconds, "valid": result.valid}
        save_model(result.model, folder, metrics=meta)
        return result.model, meta

    def teacher(self) -> tuple[SequenceModel, dict[str, Any]]:
        p = self.profile
        folder = self._folder(
            "teacher", {"teacher": p.teacher.model_dump(), "train": self._train_payload(p.teacher_train)}
        )
        known_texts = self.texts.texts[: self.split.known]
        self.teacher_folder = folder
        return self._kept(
            folder,
            lambda: train_teacher(
                known_texts, self.split.folds, p.teacher, p.teacher_train, self.text_cache, budget_clock="process"
            ),
        )

    def student(self, teacher: SequenceModel, teacher_folder: str) -> tuple[SequenceModel, TextMap, dict[str, Any]]:
        p = self.profile
        payload = {
            "student": p.student.model_dump(),
            "train": self._train_payload(p.student_train),
            "teacher": teacher_folder,
        }
        folder = self._folder("student", {**payload, "distill": p.distill.model_dump()})
        known = ItemTexts(self.texts.texts[: self.split.known], self.texts.checkpoint, self.text_cache)
        if not self.args.retrain and (folder / "model.safetensors").is_file():
            log.info("reusing %s (its text map fitted again: cheap, and the fitting may have changed)", folder)
            model = load_model(folder)
            text_map = text_map_for(model, self.split.folds, known)
            assert text_map is not None
            return model, text_map, read_metrics(folder)
        cache = teacher_cache(
            teacher, self.split.folds, p.student.max_len, p.distill.top_k, (p.distill.temperature,), None
        )
        train = p.student_train.model_copy(update={"device": "cpu"})
        served = served_student(self.split.folds, p.student, train, p.distill, cache, teacher, known)
        assert served.text_map is not None
        meta = {"history": served.result.history.to_dict(), "train_seconds": served.result.seconds}
        save_model(served.model, folder, metrics=meta)
        served.text_map.save(folder)
        return served.model, served.text_map, meta

    def metrics(self, scorer: Any, users: Any) -> dict[str, float]:
        ranks = rank_targets(scorer, users)
        return {**metrics_from_ranks(ranks, (10, 20)), "users": float(len(ranks))}

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        split = self.split
        teacher, teacher_meta = self.teacher()
        if self.args.teacher_only:
            return {"teacher": str(self.teacher_folder)}
        student, text_map, student_meta = self.student(teacher, self.teacher_folder.name)
        counts = item_counts(split.folds.train.values(), split.known)
        teacher_map = fit_text_map(
            teacher,
            self.encodings[: split.known + 1],
            counts,
            lm=self.lm,
            valid=valid_subset(split.folds, None),
            train=list(split.folds.train.values()),
        )
        # For comparison, the maps without text neighbours (the linear stages alone) and without
        # ranking epochs either (the ridge fit alone): validation on held-out known items is the only
        # choice production can make, and these show what it picks against.
        known_encodings, valid = self.encodings[: split.known + 1], valid_subset(split.folds, None)
        train = list(split.folds.train.values())
        linear_map = fit_text_map(
            student, known_encodings, counts, lm=self.lm, valid=valid, train=train, text_neighbours=False
        )
        ridge_map = fit_text_map(student, known_encodings, counts, lm=self.lm, valid=valid, text_neighbours=False)
        cold, warm = split.cold(), split.warm()
        student_table = with_text_items(student, text_map, self.encodings)
        linear_table = with_text_items(student, linear_map, self.encodings)
        ridge_table = with_text_items(student, ridge_map, self.encodings)
        teacher_table = with_text_items(teacher, teacher_map, self.encodings)
        held = torch.zeros(split.num_items + 1, dtype=torch.bool)
        held[split.known + 1 :] = True
        popularity = Popularity(split.num_items).fit(split.folds.train_for_test())
        rows = {
            "cold": {
                "student + text map": self.metrics(TableScorer(student, student_table), cold),
                "student + linear text map (no text neighbours)": self.metrics(
                    TableScorer(student, linear_table), cold
                ),
                "student + ridge-only text map": self.metrics(TableScorer(student, ridge_table), cold),
                "teacher + text map": self.metrics(TableScorer(teacher, teacher_table), cold),
                "popularity": self.metrics(popularity, cold),
                "random": report.random_metrics(split.num_items, cold),
            },
            "warm": {
                "student, known items only": self.metrics(TableScorer(student, student_table, held), warm),
                "student + held-out items from text": self.metrics(TableScorer(student, student_table), warm),
                "student + held-out items from text, linear map": self.metrics(
                    TableScorer(student, linear_table), warm
                ),
                "student + held-out items from text, ridge-only map": self.metrics(
                    TableScorer(student, ridge_table), warm
                ),
                "teacher, known items only": self.metrics(TableScorer(teacher, teacher_table, held), warm),
                "teacher + held-out items from text": self.metrics(TableScorer(teacher, teacher_table), warm),
            },
        }
        result = {
            "dataset": split.data.name,
            "data": split.data.summary(),
            "known_items": split.known,
            "held_out_items": split.num_items - split.known,
            "share": self.args.share,
            "seed": self.args.seed,
            "profile": self.profile.name,
            "plateau_factor": self.profile.teacher_train.plateau_factor,
            "transfer": self.profile.distill.transfer,
            "rows": rows,
            "text_maps": {
                "student": _describe(text_map),
                "student, linear only": _describe(linear_map),
                "student, ridge only": _describe(ridge_map),
                "teacher": _describe(teacher_map),
            },
            "training": {"teacher": _training(teacher_meta), "student": _training(student_meta)},
            "seconds": round(time.perf_counter() - started, 1),
        }
        if self.args.latency:
            from bench.cold_start_latency import measure_latency

            result["latency"] = measure_latency(
                student, text_map, split, self.encodings, self.args.latency_items, student_table
            )
        report.write(result, self.out)
        return result


def _describe(text_map: TextMap) -> dict[str, Any]:
    return {
        "ridge": text_map.ridge,
        "min_count": text_map.min_count,
        "norm": text_map.norm,
        "valid_ndcg": text_map.valid_ndcg,
        "method": text_map.method,
        "ranking_epochs": text_map.epochs,
        "neighbours": text_map.neighbours.k if text_map.neighbours else 0,
        "temperature": text_map.neighbours.temperature if text_map.neighbours else None,
        "blend": text_map.blend,
        "describe": text_map.describe(),
    }


def _training(meta: dict[str, Any]) -> dict[str, Any]:
    history = meta.get("history") or {}
    return {
        "train_seconds": meta.get("train_seconds"),
        "best_epoch": history.get("best_epoch"),
        "stopped": history.get("stopped"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-toys")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--share", type=float, default=0.1, help="share of the items held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every time budget (smoke runs)")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument(
        "--plateau",
        type=float,
        default=None,
        help="TrainConfig.plateau_factor for both models (default: the profile's)",
    )
    parser.add_argument("--teacher-only", action="store_true", help="train (or find) the teacher, then stop")
    parser.add_argument(
        "--transfer", action="store_true", help="the student's item table starts from the teacher's (distill.transfer)"
    )
    parser.add_argument("--latency", action="store_true", help="also time publish -> first recommendation")
    parser.add_argument(
        "--latency-items",
        type=int,
        default=100,
        help="items timed: the first N held-out items their probe session ranks in its top 10 offline",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: robust on a shared machine)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "urllib3", "httpx", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    ColdBench(args).run()


if __name__ == "__main__":
    main()
