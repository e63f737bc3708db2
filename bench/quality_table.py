"""The quality benchmark's main table: every model of ``ROWS`` ranked once on the test targets.

Mixed into bench.quality.Bench. Each model's test ranks give the overall metrics and the
metrics per popularity bucket of the target (head / torso / tail, equal users, by the target's
count in the sequences the test inputs come from); serving speed is measured on the CPU.
"""

from __future__ import annotations

import logging
import platform
import time
from functools import cached_property
from typing import Any

import torch

from bench import quality_agreement
from bench import quality_report as report
from bench.quality_agreement import agreement
from bench.quality_models import PLAN, ROWS, STUDENTS
from bench.quality_parallel import run_parallel
from bench.quality_timing import serving_speeds
from core.data.dataset import item_counts
from core.evaluation.buckets import Buckets, metrics_by_bucket, popularity_buckets
from core.evaluation.evaluator import Scorer, rank_targets
from core.evaluation.metrics import metrics_from_ranks
from core.models.base import SequenceModel
from core.models.popularity import Popularity
from core.models.scorer import ModelScorer
from core.training.history import History

log = logging.getLogger("bench.quality")


class Table:
    """Mixed into bench.quality.Bench (uses its folds, models, selection and output path)."""

    @cached_property
    def buckets(self) -> Buckets:
        counts = item_counts(self.folds.train_for_test().values(), self.folds.num_items)
        return popularity_buckets(self.folds.test.targets, counts)

    def row(self, name: str, scorer: Scorer, model: SequenceModel | None, meta: dict[str, Any]) -> dict[str, Any]:
        ranks = rank_targets(scorer, self.folds.test)
        test = {**metrics_from_ranks(ranks), "users": float(len(ranks))}
        history = meta.get("history")
        row: dict[str, Any] = {
            "model": name,
            "test": test,
            "buckets": metrics_by_bucket(ranks, self.buckets),
            "cpu_seconds_to_best": History.from_dict(history).cpu_seconds_to_best() if history else None,
            **{k: meta.get(k) for k in ("train_seconds", "train_cpu_seconds", "reused", "valid", "history", "folder")},
        }
        if model is not None:
            row["params"] = model.parameter_counts()
            self.served[name] = model
        log.info("%s: test NDCG@10 %.4f", name, test["NDCG@10"])
        return row

    def main_table(self) -> None:
        p = self.profile
        if self.args.parallel > 1:
            for phase in PLAN:
                run_parallel(self.args, phase)
        teacher_config, distill, picked = self.configs()
        rows: dict[str, dict[str, Any]] = {}
        pop = Popularity(self.data.num_items).fit(self.folds.train_for_test())
        rows["popularity"] = self.row("popularity", pop, None, {})
        for name, (model, meta) in (
            ("teacher (pretrained)", self.main_teacher()),
            ("teacher (random init)", self.twin_teacher()),
        ):
            rows[name] = self.row(name, ModelScorer(model), model, meta)
        for name, (model, meta) in self.students().items():
            rows[name] = self.row(name, ModelScorer(model), model, meta)
        (cache, cache_seconds), (twin_cache, twin_seconds) = self.teacher_scores(), self.teacher_scores(twin=True)
        served = {name: ModelScorer(model) for name, model in self.served.items()}
        agreed = agreement(served, "teacher (pretrained)", self.folds.test)
        agreed_valid = agreement(served, "teacher (pretrained)", self.folds.valid)
        for name, speed in serving_speeds(self.served, self.folds.test.inputs).items():
            rows[name]["speed"] = speed
        ordered = [rows[name] for name in ROWS]
        elapsed = time.perf_counter() - self.started
        s, t = p.student_train, p.teacher_train
        md = [
            f"# Quality on {self.data.name}: full ranking, leave-one-out, test targets",
            "",
            f"Profile **{p.name}**: {p.summary}",
            "",
            *self.scale_lines(),
            f"Every model trains until validation NDCG@10 stops improving: patience {s.patience} evaluations "
            f"for every student, {t.patience} for the teachers; caps of {_cap(s.max_minutes)} (students) and "
            f'{_cap(t.max_minutes)} (teachers) are a safety net ("cap hit" in the train time column when one '
            f"ended a run). Caps count {_clock(self.args.budget_clock)} with {self.args.threads} torch "
            "thread(s). Train time is wall-clock (CPU time in brackets); CPU-min to best epoch is what the "
            "kept weights cost, validation included (a KD student's teacher scores are counted apart, "
            "below; the teacher it learns from, in the teacher's row).",
            "",
            f"Data: {self.data.summary()}; {len(self.folds.test)} test users. Device for training: "
            f"{self._device()}; serving columns measured on the CPU with {torch.get_num_threads()} threads "
            f"({platform.processor() or platform.machine()}; models measured in alternating rounds, best round "
            f"kept, as other work shared the machine). This run took {elapsed / 60:.1f} min (teacher scores "
            f"for KD: {cache_seconds / 60:.1f} min, random-init teacher's {twin_seconds / 60:.1f} min, "
            f"{len(cache.logits):,} positions each).",
            "",
            report.table(ordered),
            "",
            report.bucket_note(self.buckets),
            "",
            *self.settings_lines(teacher_config, distill, picked),
            "",
            "## Targets (reported, not asserted)",
            "",
            *report.targets(rows, self.data.name),
            "",
            *quality_agreement.lines(agreed_valid, "teacher (pretrained)", "validation"),
            "",
            *quality_agreement.lines(agreed, "teacher (pretrained)"),
            "",
            "## Teacher learning curve (valid NDCG@10 per epoch)",
            "",
            report.curve(rows["teacher (pretrained)"].get("history") or {}),
            "",
            "## Random-init teacher learning curve",
            "",
            report.curve(rows["teacher (random init)"].get("history") or {}),
            "",
            "## Student learning curves (valid NDCG@10 per epoch; same patience and cap)",
            "",
            report.side_by_side({name: rows[name].get("history") or {} for name in STUDENTS}),
            "",
            report.stops({name: rows[name].get("history") or {} for name in STUDENTS}),
        ]
        if picked:
            md += ["", "## Selection (from quality-*-selection.md)", "", picked.get("summary", "")]
        report.write(
            self.out,
            "\n".join(md),
            {
                "profile": p.name,
                "dataset": self.data.name,
                "rows": ordered,
                "elapsed_s": elapsed,
                "teacher": teacher_config.model_dump(),
                "teacher_objective": teacher_config.objective,
                "teacher_items": teacher_config.items,
                "distill": distill.model_dump(),
                "selection": picked,
                "agreement": agreed,
                "agreement_valid": agreed_valid,
                "cache_seconds": cache_seconds,
                "twin_cache_seconds": twin_seconds,
                "positions": len(twin_cache.logits),
                "buckets": {
                    "users": {k: len(v) for k, v in self.buckets.rows.items()},
                    "count_range": self.buckets.count_range,
                },
            },
        )
        print("\n".join(md[8:14]))
        log.info("wrote %s.md and .json", self.out)

    def scale_lines(self) -> list[str]:
        """A warning when ``--scale`` shrank the profile's caps: then they may decide where a run
        stops, and the rows that hit one are not trained to convergence."""
        if self.args.scale == 1.0:
            return []
        return [
            f"**Caps scaled by {self.args.scale:g}** (`--scale {self.args.scale:g}`) from the profile's, so that "
            "the run fits the time available: the caps below replace those in the profile's summary, and a "
            'row whose train time says "cap hit" stopped on its cap, not on its patience.',
            "",
        ]

    def settings_lines(self, teacher_config: Any, distill: Any, picked: dict[str, Any]) -> list[str]:
        """Which teacher objective, item representation, dropout and KD settings were used, and why."""

        def source(part: str) -> str:
            return "picked by the selection study" if picked.get(part) else "profile default"

        def margin(part: str) -> str:
            won = picked.get(part) or {}
            return (
                f": valid NDCG@10 {won['best']:.4f}, {won['margin']:+.4f} ({won['relative']:+.1f}%) over "
                f"the runner-up {won['runner_up']}"
                if won.get("winner") is not None
                else ""
            )

        return [
            f"Teacher: MiniLM, {teacher_config.num_layers or 'all'} layers, input {teacher_config.max_len}; "
            f"objective **{teacher_config.objective}** ({source('objective')}); item representation "
            f"**{teacher_config.items}** ({source('items')}{margin('items')}); dropout "
            f"**{teacher_config.dropout}** ({source('dropout')}{margin('dropout')}). KD alpha **{distill.alpha}**, T "
            f"**{distill.temperature}**, hidden alignment weight {distill.hidden_weight}, top-{distill.top_k} "
            f"teacher scores ({source('kd')}); the KD control uses the same settings on the random-init "
            "teacher's scores."
        ]


def _cap(minutes: float | None) -> str:
    return "none" if not minutes else f"{minutes:g} min"


def _clock(clock: str) -> str:
    return "this process's CPU time" if clock == "process" else "wall-clock time"
