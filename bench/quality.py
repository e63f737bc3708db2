"""Quality benchmark on ML-1M: popularity, student without / with KD, teacher, random-init teacher.

    .venv/bin/python -m bench.quality --profile cpu            # ~90 min on a 2-core CPU
    .venv/bin/python -m bench.quality --profile full --device cuda
    .venv/bin/python -m bench.quality --profile cpu --study all   # objective and KD alpha/T selection

Full ranking over all items, leave-one-out, seen items removed, test targets. Writes
bench/results/quality-ml1m.md and .json (studies: quality-ml1m-selection.*). Trained models are
kept under var/artifacts/bench/ and reused by later runs with the same settings (--retrain to
train again). The teacher objective and the KD alpha/T come from the selection study when its
results exist for this profile (picked by validation NDCG@10), else the profile's defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench import quality_report as report
from bench.quality_profiles import PROFILES, Profile
from bench.quality_parallel import run_parallel, setup
from bench.quality_studies import Studies
from bench.quality_timing import serving_speeds
from core.data.catalog import load_dataset
from core.data.dataset import Dataset
from core.data.split import LeaveOneOut, leave_one_out
from core.evaluation import evaluate
from core.models.artifacts import load_model, read_metrics, save_model
from core.models.base import SequenceModel
from core.models.popularity import Popularity
from core.models.scorer import ModelScorer
from core.settings import DistillConfig, load_settings
from core.training.recipes import TrainResult, distill_student, teacher_cache, train_student, train_teacher

log = logging.getLogger("bench.quality")
RESULTS = Path(__file__).resolve().parent / "results"


class Bench(Studies):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        profile = PROFILES[args.profile]
        self.profile: Profile = profile.scaled(args.scale) if args.scale != 1.0 else profile
        self.device = args.device
        settings = load_settings()
        data = load_dataset(args.dataset, settings.data_dirs, text_columns=settings.text_columns)
        if args.users:
            data = Dataset(data.name, data.items, {u: data.sequences[u] for u in sorted(data.sequences)[:args.users]})
        self.data = data
        self.folds: LeaveOneOut = leave_one_out(data)
        smoke = Path("var/bench-smoke")
        self.artifacts = (smoke if args.users else Path(settings.artifact_dir)) / "bench" / Path(args.dataset).name
        self.text_cache = Path(settings.artifact_dir) / "text-encodings"
        stem = f"quality-{Path(args.dataset).name.replace('-', '')}"
        self.out = Path(args.out) if args.out else (RESULTS / stem) if not args.users else smoke / stem
        self._selection = self._read_selection()  # read once: a study finishing meanwhile changes nothing
        self.started = time.perf_counter()
        self.served: dict[str, SequenceModel] = {}
        # Artifacts there before this run are "reused"; ones its worker processes train are not.
        self.preexisting = {path.name for path in self.artifacts.iterdir()} if self.artifacts.is_dir() else set()

    # --- training with reuse ---------------------------------------------------------------
    def trained(self, name: str, payload: dict[str, Any], train: Callable[[], TrainResult],
                reuse: bool = True) -> tuple[SequenceModel, dict[str, Any]]:
        payload = {**payload, "data": self.data.summary(), "name": name, "clock": self.args.budget_clock}
        key = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
        folder = self.artifacts / f"{name.replace(' ', '-').replace(',', '')}-{key}"
        if reuse and not self.args.retrain and (folder / "model.safetensors").is_file():
            log.info("reusing %s from %s", name, folder)
            return load_model(folder, self._device()), {**read_metrics(folder), "folder": str(folder),
                                                        "reused": folder.name in self.preexisting}
        result = train()
        meta = {"history": result.history.to_dict(), "train_seconds": result.seconds,
                "train_cpu_seconds": result.cpu_seconds, "valid": result.valid}
        save_model(result.model, folder, metrics=meta, extra={"payload": payload})
        return result.model, {**meta, "reused": False, "folder": str(folder)}

    def _device(self) -> str:
        return "cuda" if self.device == "auto" and torch.cuda.is_available() else ("cpu" if self.device == "auto"
                                                                                   else self.device)

    def _train(self, config: Any) -> Any:
        return config.model_copy(update={"device": self.device})

    def teacher(self, config: Any, train: Any, name: str) -> tuple[SequenceModel, dict[str, Any]]:
        p = self.profile
        payload = {"teacher": config.model_dump(), "train": train.model_dump(), "windows": p.teacher_windows,
                   "valid_users": p.teacher_valid_users}
        return self.trained(name, payload, lambda: train_teacher(
            self.data.item_texts(), self.folds, config, self._train(train), self.text_cache,
            p.teacher_windows, p.teacher_valid_users, budget_clock=self.args.budget_clock))

    def cache(self, teacher: SequenceModel, teacher_folder: str, keep_hidden: bool = False) -> tuple[Any, float]:
        """Teacher scores for the student's windows (built once, kept next to the artifacts) and
        the seconds it took to build them."""
        p = self.profile
        last = p.kd_last if teacher.objective == "causal" else p.kd_last_cloze
        name = f"teacher-scores-{Path(teacher_folder).name}-L{p.student.max_len}-k{p.distill.top_k}" \
               f"-last{last}{'-hidden' if keep_hidden else ''}"
        timing = self.artifacts / f"{name}.json"
        started = time.perf_counter()
        cache = teacher_cache(teacher, self.folds, p.student.max_len, p.distill.top_k, p.temperatures,
                              self.artifacts / f"{name}.safetensors", last=last, device=self.device,
                              keep_hidden=keep_hidden)
        if not timing.is_file():
            timing.write_text(json.dumps({"seconds": time.perf_counter() - started, "positions": len(cache.logits)}))
        return cache, json.loads(timing.read_text())["seconds"]

    # --- the models of the table (each trained once, then reused) -----------------------------
    def configs(self) -> tuple[Any, Any, dict[str, Any]]:
        """Teacher config and distillation config, from the selection study when it exists."""
        p, picked = self.profile, self.selection()
        teacher_config = p.teacher
        if picked.get("objective", {}).get("winner"):
            teacher_config = teacher_config.model_copy(update={"objective": picked["objective"]["winner"]})
        distill = p.distill
        if picked.get("kd", {}).get("winner") and picked["kd"].get("student") == self.student_recipe():
            w = picked["kd"]["winner"]
            distill = distill.model_copy(update={"alpha": w["alpha"], "temperature": w["temperature"],
                                                 "hidden_weight": w.get("hidden_weight", 0.0)})
        return teacher_config, distill, picked

    def student_recipe(self) -> dict[str, Any]:
        """What a KD study's winner holds for: the student and its training (budget included)."""
        return {"student": self.profile.student.model_dump(), "train": self.profile.student_train.model_dump()}

    def main_teacher(self) -> tuple[SequenceModel, dict[str, Any]]:
        return self.teacher(self.configs()[0], self.profile.teacher_train, "teacher")

    def twin_teacher(self) -> tuple[SequenceModel, dict[str, Any]]:
        config = self.configs()[0].model_copy(update={"pretrained": False})
        return self.teacher(config, self.profile.teacher_train, "teacher random init")

    def plain_student(self) -> tuple[SequenceModel, dict[str, Any]]:
        p = self.profile
        return self.trained("student", {"student": p.student.model_dump(), "train": p.student_train.model_dump()},
                            lambda: train_student(self.folds, p.student, self._train(p.student_train),
                                                  budget_clock=self.args.budget_clock))

    def teacher_scores(self) -> tuple[Any, float]:
        teacher, meta = self.main_teacher()
        return self.cache(teacher, meta["folder"], keep_hidden=self.configs()[1].hidden_weight > 0)

    def kd_student(self, distill: DistillConfig | None = None) -> tuple[SequenceModel, dict[str, Any]]:
        """The distilled student (``distill``: the selected settings unless given)."""
        p = self.profile
        distill = distill or self.configs()[1]
        teacher, t_meta = self.main_teacher()
        cache, _ = self.cache(teacher, t_meta["folder"], keep_hidden=distill.hidden_weight > 0)
        hidden = teacher.item_embeddings().shape[1]
        return self.trained("student KD", {"student": p.student.model_dump(), "distill": distill.model_dump(),
                                           "train": p.student_train.model_dump(), "teacher": t_meta["folder"]},
                            lambda: distill_student(self.folds, p.student, self._train(p.student_train),
                                                    distill, cache, teacher_hidden=hidden,
                                                    budget_clock=self.args.budget_clock))

    def row(self, model_name: str, scorer: Any, model: SequenceModel | None, meta: dict[str, Any]) -> dict[str, Any]:
        test = evaluate(scorer, self.folds.test)
        row: dict[str, Any] = {"model": model_name, "test": test, **{k: meta.get(k) for k in
                               ("train_seconds", "train_cpu_seconds", "reused", "valid", "history", "folder")}}
        if model is not None:
            row["params"] = model.parameter_counts()
            self.served[model_name] = model
        log.info("%s: test NDCG@10 %.4f", model_name, test["NDCG@10"])
        return row

    # --- the table -------------------------------------------------------------------------
    def _read_selection(self) -> dict[str, Any]:
        path = self.out.parent / f"{self.out.name}-selection.json"
        if not path.is_file():
            return {}
        payload = json.loads(path.read_text())
        return payload if payload.get("profile") == self.profile.name else {}

    def selection(self) -> dict[str, Any]:
        """The selection study's results for this profile, as they were when the run started."""
        return self._selection

    def main_table(self) -> None:
        p = self.profile
        if self.args.parallel > 1:
            # Independent parts in separate single-threaded processes (robust on a shared CPU):
            # both teachers together, then the plain student beside the teacher scores and the
            # distilled student trained on them.
            run_parallel(self.args, ["main_teacher", "twin_teacher"])
            run_parallel(self.args, ["plain_student", "kd_student"])
        teacher_config, distill, picked = self.configs()
        rows: dict[str, dict[str, Any]] = {}
        pop = Popularity(self.data.num_items).fit(self.folds.train_for_test())
        rows["popularity"] = self.row("popularity", pop, None, {})
        teacher, t_meta = self.main_teacher()
        rows["teacher"] = self.row("teacher", ModelScorer(teacher), teacher, t_meta)
        twin, r_meta = self.twin_teacher()
        rows["teacher, random init"] = self.row("teacher, random init", ModelScorer(twin), twin, r_meta)
        plain, s_meta = self.plain_student()
        rows["student without KD"] = self.row("student without KD", ModelScorer(plain), plain, s_meta)
        cache, cache_seconds = self.teacher_scores()
        kd, k_meta = self.kd_student()
        rows["student with KD"] = self.row("student with KD", ModelScorer(kd), kd, k_meta)
        for name, speed in serving_speeds(self.served, self.folds.test.inputs).items():
            rows[name]["speed"] = speed
        order = ["popularity", "student without KD", "student with KD", "teacher", "teacher, random init"]
        ordered = [rows[name] for name in order]
        elapsed = time.perf_counter() - self.started
        md = [f"# Quality on {self.data.name}: full ranking, leave-one-out, test targets", "",
              f"Profile **{p.name}**: {p.summary}", "",
              f"Time budgets count {'this process' + chr(39) + 's CPU time' if self.args.budget_clock == 'process' else 'wall-clock time'}"
              f" with {self.args.threads} torch thread(s); the train time column is wall-clock (CPU time in brackets).", "",
              f"Data: {self.data.summary()}; {len(self.folds.test)} test users. Device for training: "
              f"{self._device()}; serving columns measured on the CPU with {torch.get_num_threads()} threads "
              f"({platform.processor() or platform.machine()}; models measured in alternating rounds, best round "
              f"kept, as other work shared the machine). This run took {elapsed / 60:.1f} min"
              f" (teacher scores for KD: {cache_seconds / 60:.1f} min, {len(cache.logits):,} positions).", "",
              report.table(ordered), "",
              f"Teacher objective: **{teacher_config.objective}** "
              f"({'picked by the selection study' if picked.get('objective') else 'profile default'}); "
              f"KD alpha **{distill.alpha}**, T **{distill.temperature}**, hidden alignment weight "
              f"{distill.hidden_weight} ({'picked by the selection study' if picked.get('kd') else 'profile default'}).",
              "", "## Targets (reported, not asserted)", "", *report.targets(rows, p.name), "",
              "## Teacher learning curve (valid NDCG@10 per epoch)", "",
              report.curve(rows["teacher"].get("history") or {}), "",
              "## Random-init teacher learning curve", "", report.curve(rows["teacher, random init"].get("history") or {}),
              "", "## Student learning curves (same CPU budget; a KD step costs more)", "",
              report.side_by_side({name: rows[name].get("history") or {}
                                   for name in ("student without KD", "student with KD")})]
        if picked:
            md += ["", "## Selection (from quality-*-selection.md)", "", picked.get("summary", "")]
        report.write(self.out, "\n".join(md), {"profile": p.name, "rows": ordered, "elapsed_s": elapsed,
                                               "teacher_objective": teacher_config.objective,
                                               "distill": distill.model_dump(), "selection": picked,
                                               "cache_seconds": cache_seconds})
        print("\n".join(md[:9]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (training; serving speed is CPU)")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--study", choices=("none", "objective", "kd", "all"), default="none",
                        help="run the selection study instead of the table")
    parser.add_argument("--retrain", action="store_true", help="ignore trained models under var/artifacts")
    parser.add_argument("--users", type=int, default=0, help="first N users only (smoke runs; results to var/)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every time budget (smoke runs)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is robust on a shared machine: no thread barriers)")
    parser.add_argument("--budget-clock", choices=("wall", "process"), default="process",
                        help="time budgets count wall-clock or this process's CPU time (default: the "
                             "same compute however busy the machine is)")
    parser.add_argument("--out", default=None,
                        help="results path without suffix (default bench/results/quality-<dataset>)")
    parser.add_argument("--parallel", type=int, default=2,
                        help="processes for independent parts (both teachers; plain student + teacher scores)")
    args = parser.parse_args()
    setup(args)
    bench = Bench(args)
    if args.study != "none":
        bench.study(args.study)
    else:
        bench.main_table()


if __name__ == "__main__":
    main()
