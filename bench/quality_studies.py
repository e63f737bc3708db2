"""Selection studies of the quality benchmark: teacher objective (cloze vs causal), the teacher's
item representation (free / text+id / text), the teacher's dropout and KD alpha / T (+ hidden
alignment), each picked by validation NDCG@10. Objective and items at a short, stated budget;
dropout and KD train exactly as the table does, so their winners are the table's own models.
Each part sees the winners of the parts before it (the selection file is written after every
part)."""

from __future__ import annotations

import json
from typing import Any

from bench import quality_report as report
from bench.quality_parallel import run_parallel
from core.models.base import SequenceModel
from core.training.history import History

STUDIES = ("objective", "items", "dropout", "kd")
"""The parts of ``--study all``, in order: the teacher first, then KD from it."""
DROPOUTS = (0.1, 0.3, 0.5)
"""``TeacherConfig.dropout`` candidates: the LM's own 0.1, and the heavier rates that small
sequence models use on sparse data (SASRec: 0.5 on Amazon), since the teacher's free item table
overfits there (its training loss keeps falling after validation peaks)."""
ITEMS = ("free", "text+id", "text")
"""``TeacherConfig.items`` variants (core.models.teacher)."""


def _verdict(runs: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, Any], str]:
    """The candidates best first by validation NDCG@10, the winner with its margin over the
    runner-up, and the sentence that says so."""
    ranked = sorted(runs, key=lambda k: -runs[k]["valid_ndcg10"])
    best, other = runs[ranked[0]]["valid_ndcg10"], runs[ranked[1]]["valid_ndcg10"]
    relative = (best / other - 1) * 100 if other else 0.0
    verdict = {"winner": ranked[0], "runner_up": ranked[1], "best": best, "margin": best - other, "relative": relative}
    line = f"Winner: **{ranked[0]}** by {best - other:+.4f} ({relative:+.1f}%) over {ranked[1]}."
    return ranked, verdict, line


class Studies:
    """Mixed into bench.quality.Bench (uses its profile, data, reuse and caches)."""

    def study(self, which: str) -> None:
        path = self.out.parent / f"{self.out.name}-selection.json"
        previous = json.loads(path.read_text()) if path.is_file() else {}
        same_profile = previous.get("profile") == self.profile.name
        payload: dict[str, Any] = previous if same_profile else {"profile": self.profile.name}
        lines: list[str] = []
        for part in STUDIES:
            if which in (part, "all"):
                payload[part] = getattr(self, f"{part}_study")()
                lines = self._write_selection(path, payload)
        print("\n".join(lines))

    def _write_selection(self, path: Any, payload: dict[str, Any]) -> list[str]:
        """Write the selection so far; later parts (and their worker processes) then use it."""
        lines = [f"# Selection on {self.data.name} (profile {self.profile.name}), by validation NDCG@10", ""]
        for part in STUDIES:
            if part in payload:
                lines += [f"## {part}", "", payload[part]["text"], ""]
        payload["summary"] = "\n".join(lines[2:])
        report.write(path.with_suffix(""), "\n".join(lines), payload)
        self._selection = payload
        return lines

    def study_teacher(self, objective: str, items: str = "free") -> tuple[SequenceModel, dict[str, Any]]:
        p = self.profile
        config = p.study_teacher.model_copy(update={"objective": objective, "items": items})
        name = f"study teacher {objective}" + ("" if items == "free" else f" items {items}")
        return self.teacher(config, p.study_teacher_train, name)

    def objective_study(self) -> dict[str, Any]:
        p, runs = self.profile, {}
        objectives = ("causal", "cloze")
        if self.args.parallel > 1:
            run_parallel(self.args, [("study_teacher", objective) for objective in objectives])
        for objective in objectives:
            _, meta = self.study_teacher(objective)
            runs[objective] = {"valid_ndcg10": meta["valid"].get("NDCG@10", 0.0), "history": meta["history"]}
        ranked = sorted(runs, key=lambda k: -runs[k]["valid_ndcg10"])
        best, other = runs[ranked[0]]["valid_ndcg10"], runs[ranked[1]]["valid_ndcg10"]
        t = p.study_teacher
        text = (
            f"Teacher objective, MiniLM truncated to {t.num_layers} layers, input {t.max_len}, "
            f"{p.study_teacher_train.max_minutes or 'no'} CPU-min budget each, valid users: "
            f"{p.teacher_valid_users or 'all'}:\n\n| objective | valid NDCG@10 | epochs |\n|---|---|---|\n"
            + "\n".join(
                f"| {k} | {runs[k]['valid_ndcg10']:.4f} | {len(runs[k]['history']['epochs'])} |" for k in ranked
            )
            + f"\n\nWinner: **{ranked[0]}** by {best - other:+.4f} "
            f"({(best / other - 1) * 100 if other else 0:+.1f}%)."
        )
        return {"runs": runs, "winner": ranked[0], "margin": best - other, "text": text}

    def items_study(self) -> dict[str, Any]:
        """Teacher item representation, each variant trained as the objective study's teachers
        (its winning objective; the ``free`` run is the objective study's own, reused)."""
        p = self.profile
        objective = (self.selection().get("objective") or {}).get("winner") or p.study_teacher.objective
        if self.args.parallel > 1:
            run_parallel(self.args, [("study_teacher", objective, items) for items in ITEMS])
        runs = {}
        for items in ITEMS:
            _, meta = self.study_teacher(objective, items)
            runs[items] = {
                "valid_ndcg10": meta["valid"].get("NDCG@10", 0.0),
                "history": meta["history"],
                "stopped": meta["history"].get("stopped"),
            }
        ranked, verdict, winner = _verdict(runs)
        t = p.study_teacher
        text = (
            f"Teacher item representation (objective {objective}), MiniLM truncated to {t.num_layers} "
            f"layers, input {t.max_len}, {p.study_teacher_train.max_minutes or 'no'} CPU-min cap and "
            f"patience {p.study_teacher_train.patience} each, valid users: {p.teacher_valid_users or 'all'}:"
            "\n\n| items | valid NDCG@10 | epochs | stopped by |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {k} | {runs[k]['valid_ndcg10']:.4f} | {len(runs[k]['history']['epochs'])} | {runs[k]['stopped']} |"
                for k in ranked
            )
            + f"\n\n{winner}"
        )
        return {"runs": runs, **verdict, "objective": objective, "text": text}

    def dropout_teacher(self, dropout: float) -> tuple[SequenceModel, dict[str, Any]]:
        """The table's teacher (its config, training, patience and cap) at this dropout: the
        winner's artifact is the one the table then reuses."""
        config = self.configs()[0].model_copy(update={"dropout": dropout})
        return self.teacher(config, self.profile.teacher_train, "teacher")

    def dropout_study(self) -> dict[str, Any]:
        """Teacher dropout, each candidate trained to convergence as the table's teacher (the
        student alone, which needs no teacher, fills a free process meanwhile)."""
        p = self.profile
        if self.args.parallel > 1:
            run_parallel(self.args, [*(("dropout_teacher", d) for d in DROPOUTS), ("plain_student",)])
        runs = {}
        for dropout in DROPOUTS:
            _, meta = self.dropout_teacher(dropout)
            history = History.from_dict(meta["history"])
            cpu_to_best = history.cpu_seconds_to_best()
            runs[str(dropout)] = {
                "valid_ndcg10": meta["valid"].get("NDCG@10", 0.0),
                "history": meta["history"],
                "stopped": history.stopped,
                "best_epoch": history.best_epoch,
                "cpu_min_to_best": None if cpu_to_best is None else cpu_to_best / 60,
            }
        ranked, verdict, winner = _verdict(runs)
        t, train = self.configs()[0], p.teacher_train
        text = (
            f"Teacher dropout (hidden layers, attention and the input embeddings), {t.objective} objective, "
            f"{t.items} items, MiniLM truncated to {t.num_layers} layers, input {t.max_len}; each trained as "
            f"the table's teacher (patience {train.patience}, cap {train.max_minutes or 'none'} CPU-min), "
            f"valid users: {p.teacher_valid_users or 'all'}:"
            "\n\n| dropout | valid NDCG@10 | best epoch | epochs | stopped by | CPU-min to best |\n"
            "|---|---|---|---|---|---|\n"
            + "\n".join(
                f"| {k} | {runs[k]['valid_ndcg10']:.4f} | {runs[k]['best_epoch']} | "
                f"{len(runs[k]['history']['epochs'])} | {runs[k]['stopped']} | "
                + (f"{runs[k]['cpu_min_to_best']:.1f}" if runs[k]["cpu_min_to_best"] is not None else "-")
                + " |"
                for k in ranked
            )
            + f"\n\n{winner}"
        )
        # keyed by str (JSON keys); the winner as the float TeacherConfig.dropout takes
        return {
            "runs": runs,
            **verdict,
            "winner": float(verdict["winner"]),
            "runner_up": float(verdict["runner_up"]),
            "text": text,
        }

    def study_student(
        self, alpha: float | None = None, temperature: float = 1.0, hidden_weight: float = 0.0
    ) -> tuple[SequenceModel, dict[str, Any]]:
        """A student of the table: alone (alpha None) or distilled with these settings. The study
        uses the table's own training and artifacts, so the winner *is* the table's KD student."""
        if alpha is None:
            return self.plain_student()
        distill = self.profile.distill.model_copy(
            update={"alpha": alpha, "temperature": temperature, "hidden_weight": hidden_weight}
        )
        return self.kd_student(distill)

    def kd_study(self) -> dict[str, Any]:
        p = self.profile
        train = p.student_train
        teacher, t_meta = self.main_teacher()  # trained first when missing
        self.cache(teacher, t_meta["folder"])
        if any(hw > 0 for _, _, hw in p.kd_grid):
            self.cache(teacher, t_meta["folder"], keep_hidden=True)
        if self.args.parallel > 1:
            run_parallel(self.args, [("study_student",), *(("study_student", *point) for point in p.kd_grid)])
        _, base = self.study_student()
        no_kd = base["valid"].get("NDCG@10", 0.0)
        runs = []
        for alpha, temperature, hidden_weight in p.kd_grid:
            _, meta = self.study_student(alpha, temperature, hidden_weight)
            runs.append(
                {
                    "alpha": alpha,
                    "temperature": temperature,
                    "hidden_weight": hidden_weight,
                    "valid_ndcg10": meta["valid"].get("NDCG@10", 0.0),
                    "epochs": len(meta["history"]["epochs"]),
                }
            )
        ranked = sorted(runs, key=lambda r: -r["valid_ndcg10"])
        win = ranked[0]
        text = (
            f"KD alpha / T (student {p.student.num_layers} x {p.student.hidden}, "
            f"trained as the table's students: patience {train.patience}, cap {train.max_minutes or 'none'} "
            f"CPU-min; teacher = the table's teacher, valid all users):\n\n"
            "| alpha | T | hidden weight | valid NDCG@10 | epochs |\n|---|---|---|---|---|\n"
            + "\n".join(
                f"| {r['alpha']} | {r['temperature']} | {r['hidden_weight']} | {r['valid_ndcg10']:.4f} "
                f"| {r['epochs']} |"
                for r in ranked
            )
            + f"\n| no KD | - | - | {no_kd:.4f} | {len(base['history']['epochs'])} |\n\n"
            f"Winner: **alpha {win['alpha']}, T {win['temperature']}, hidden {win['hidden_weight']}**, "
            f"{win['valid_ndcg10'] - ranked[1]['valid_ndcg10']:+.4f} over the runner-up, "
            f"{(win['valid_ndcg10'] / no_kd - 1) * 100 if no_kd else 0:+.1f}% over no KD."
        )
        return {"runs": runs, "no_kd": no_kd, "winner": win, "text": text, "student": self.student_recipe()}
