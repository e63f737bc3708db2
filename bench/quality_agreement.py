"""How much of the teacher's answers each model gives: top-10 agreement on a sample of users
(of the test split or, for choices, of the validation split).

Two measures per model, against the pretrained teacher: the mean overlap of the two top-10 lists
(seen items removed from both), and, of the users whose test target the teacher puts in its top
10, the share for whom the model does too (the teacher's right answers that the model learnt).
KD should raise both over the student alone; the random-init teacher's KD student shows how much
of that is soft targets as such.
"""

from __future__ import annotations

from typing import Any

import torch

from core.data.split import EvalSet
from core.evaluation.evaluator import Scorer
from core.evaluation.metrics import pad_sequences

SAMPLE_USERS = 2000
SEED = 0


@torch.no_grad()
def top_lists(scorer: Scorer, inputs: list[list[int]], k: int, batch_size: int = 256) -> torch.Tensor:
    """``[len(inputs), k]`` item ids, best first, each history's own items excluded."""
    out = []
    for start in range(0, len(inputs), batch_size):
        rows = inputs[start : start + batch_size]
        scores = scorer.score(rows).float().clone()
        scores[:, 0] = float("-inf")
        seen = pad_sequences(rows)
        scores.scatter_(1, seen, float("-inf"))  # padding 0 is -inf already
        out.append(scores.topk(k, dim=1).indices)
    return torch.cat(out)


def agreement(
    scorers: dict[str, Scorer], reference: str, test: EvalSet, k: int = 10, users: int = SAMPLE_USERS
) -> dict[str, dict[str, float]]:
    """Per model: ``overlap`` (mean |top-k ∩ reference top-k| / k) and ``teacher_hits_kept`` (of the
    users whose target is in the reference's top k, the share whose target is in the model's)."""
    sample = test.sample(users, SEED)
    targets = torch.as_tensor(sample.targets).unsqueeze(1)
    ref = top_lists(scorers[reference], sample.inputs, k)
    ref_hits = (ref == targets).any(dim=1)
    out: dict[str, dict[str, float]] = {}
    for name, scorer in scorers.items():
        lists = ref if name == reference else top_lists(scorer, sample.inputs, k)
        shared = (lists.unsqueeze(2) == ref.unsqueeze(1)).any(dim=2).sum(dim=1).float() / k
        hits = (lists == targets).any(dim=1)
        kept = float((hits & ref_hits).sum() / ref_hits.sum().clamp(min=1))
        out[name] = {"overlap": float(shared.mean()), "teacher_hits_kept": kept, "users": float(len(sample))}
    return out


def lines(result: dict[str, Any], reference: str, split: str = "test") -> list[str]:
    first = next(iter(result.values()))
    return [
        f"## Agreement with the {reference} ({int(first['users']):,} random {split} users)",
        "",
        "| model | overlap@10 with the teacher's top 10 | teacher's hits the model also hits |",
        "|---|---:|---:|",
        *(
            f"| {name} | {m['overlap']:.3f} | {m['teacher_hits_kept']:.3f} |"
            for name, m in result.items()
            if name != reference
        ),
    ]


def main() -> None:
    """``python -m bench.quality_agreement --dataset amazon-toys teacher=FOLDER "student alone"=FOLDER ...``:
    the agreement of trained artifacts (the first one is the reference), written to
    bench/results/quality-<dataset>-agreement.md and .json."""
    import argparse
    import json
    from pathlib import Path

    from core.data.catalog import load_dataset
    from core.data.split import leave_one_out
    from core.models.artifacts import load_model
    from core.models.scorer import ModelScorer
    from core.settings import load_settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dataset", default="amazon-toys")
    parser.add_argument("models", nargs="+", help="name=artifact folder; the first is the reference")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = load_settings()
    folds = leave_one_out(load_dataset(args.dataset, settings.data_dirs, text_columns=settings.text_columns))
    pairs = [spec.split("=", 1) for spec in args.models]
    scorers: dict[str, Scorer] = {name: ModelScorer(load_model(folder)) for name, folder in pairs}
    result = agreement(scorers, pairs[0][0], folds.test)
    result_valid = agreement(scorers, pairs[0][0], folds.valid)
    out = Path(__file__).resolve().parent / "results" / f"quality-{Path(args.dataset).name.replace('-', '')}-agreement"
    command = (
        "python -m bench.quality_agreement --dataset " + args.dataset + " " + " ".join(f'"{s}"' for s in args.models)
    )
    md = [*lines(result_valid, pairs[0][0], "validation"), "", *lines(result, pairs[0][0]), "", f"`{command}`", ""]
    out.with_suffix(".md").write_text("\n".join(md))
    out.with_suffix(".json").write_text(
        json.dumps({"models": dict(pairs), "agreement": result, "agreement_valid": result_valid}, indent=2) + "\n"
    )
    print("\n".join(md))


if __name__ == "__main__":
    main()
