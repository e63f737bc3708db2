"""What padding costs on sparse data: random vs length-bucketed batches, float32 vs bfloat16 on CPU.

    .venv/bin/python -m bench.padding
    .venv/bin/python -m bench.padding --dataset ml-1m --teacher-windows 640 --reps 5

On the leave-one-out training sequences cut into windows of ``--max-len`` (mode "all", as the
recipes train): the share of padding tokens in one epoch of batches of ``--batch-size`` padded
to the full input length, to each random batch's longest row (``bucket_by_length=False``) and
bucketed by length (the default), and the same for the validation histories as the evaluator
batches them; the time of one ``fit`` epoch of the 2x64 student and of ``--teacher-windows``
windows of a 2-layer teacher (random init: the compute of the pre-trained one) each way; and the
forward+backward time of one teacher batch of 32 full windows in float32 and under CPU bfloat16
autocast (``TrainConfig.autocast_cpu``). Everything on ``--threads`` threads (default 1).
Prints a table and writes bench/results/padding-<dataset>.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from core.data.catalog import find_folder, load_dataset
from core.data.split import leave_one_out
from core.models.base import SequenceModel
from core.models.batch import TrainBatch
from core.models.sequences import length_chunks
from core.models.student import Student
from core.models.teacher import build_teacher
from core.settings import StudentConfig, StudentTrainConfig, TeacherConfig, TeacherTrainConfig, TrainConfig
from core.training import BatchSource, causal_windows, fit, seed_everything

RESULTS = Path(__file__).resolve().parent / "results"


def padding_shares(source: BatchSource, max_len: int) -> dict[str, float]:
    """Share of padding tokens in one epoch: full width, random batches, bucketed batches."""
    real = int(source.lengths.sum())
    shares = {"full width": 1 - real / (source.num_rows * max_len)}
    for label, by_length in (("random batches", False), ("bucketed", True)):
        tokens = sum(max(int(source.lengths[rows].max()), 1) * len(rows) for rows in source.batch_rows(1, by_length))
        shares[label] = 1 - real / tokens
    return shares


def eval_padding(histories: list[list[int]], history_len: int, batch_size: int = 256) -> dict[str, float]:
    """The same for the evaluator's batches (each padded to its longest history)."""
    lengths = np.minimum([len(h) for h in histories], history_len)
    real = int(lengths.sum())
    in_order = [np.arange(i, min(i + batch_size, len(lengths))) for i in range(0, len(lengths), batch_size)]
    shares = {"full width": 1 - real / (len(lengths) * history_len)}
    for label, chunks in (("random batches", in_order), ("bucketed", length_chunks(lengths, batch_size))):
        shares[label] = 1 - real / sum(max(int(lengths[c].max()), 1) * len(c) for c in chunks)
    return shares


def epoch_seconds(model: SequenceModel, source: BatchSource, config: TrainConfig) -> dict[str, float]:
    """Seconds of one ``fit`` epoch (no validation), random batches then bucketed, same weights."""
    start = {k: v.clone() for k, v in model.state_dict().items()}
    out = {}
    for label, by_length in (("random batches", False), ("bucketed", True)):
        model.load_state_dict(start)
        seed_everything(config.seed)
        history = fit(
            model,
            source,
            None,
            config.model_copy(update={"bucket_by_length": by_length}),
            desc=f"{model.kind} {label}",
            progress=False,
        )
        out[label] = history.seconds
    return out


def autocast_seconds(model: SequenceModel, batch: TrainBatch, reps: int) -> dict[str, tuple[float, float, float]]:
    """Forward+backward seconds (best, median of ``reps``) and loss, float32 and bfloat16 autocast."""
    out = {}
    model.train()
    for label, dtype in (("float32", None), ("bfloat16 autocast", torch.bfloat16)):
        times, loss = [], float("nan")
        for rep in range(reps + 1):  # the first one warms up (oneDNN picks its kernels)
            torch.manual_seed(rep)
            model.zero_grad(set_to_none=True)
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                value = model.loss(batch)
            value.backward()
            if rep:
                times.append(time.perf_counter() - started)
            loss = float(value.detach())
        out[label] = (min(times), statistics.median(times), loss)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-toys")
    parser.add_argument("--data-dir", type=Path, action="append", help="folders searched for the dataset")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--teacher-windows", type=int, default=1600, help="windows of the timed teacher epoch")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the float32 / bfloat16 batch")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    search = args.data_dir or [Path("../shared/data")]
    folder = find_folder(args.dataset, search)
    data = load_dataset(args.dataset, search)
    folds = leave_one_out(data)
    inputs, targets = causal_windows(folds.train.values(), args.max_len, mode="all")
    source = BatchSource(inputs, targets, args.batch_size, seed=0)
    train_padding = padding_shares(source, args.max_len)
    valid_padding = eval_padding(folds.valid.inputs, args.max_len)

    seed_everything(0)
    student = Student(StudentConfig(max_len=args.max_len), data.num_items)
    student_train = StudentTrainConfig(epochs=1, batch_size=args.batch_size, device="cpu")
    student_s = epoch_seconds(student, source, student_train)
    teacher = build_teacher(
        TeacherConfig(num_layers=2, max_len=args.max_len, pretrained=False), data.item_texts(), None
    )
    subset = np.sort(np.random.default_rng(0).permutation(len(inputs))[: args.teacher_windows])
    teacher_source = BatchSource(inputs[subset], targets[subset], args.batch_size, seed=0)
    teacher_train = TeacherTrainConfig(epochs=1, batch_size=args.batch_size, device="cpu")
    teacher_s = epoch_seconds(teacher, teacher_source, teacher_train)
    scale = len(inputs) / len(subset)

    generator = torch.Generator().manual_seed(0)
    x = torch.randint(1, data.num_items + 1, (32, args.max_len), generator=generator)
    y = torch.cat([x[:, 1:], torch.randint(1, data.num_items + 1, (32, 1), generator=generator)], dim=1)
    bf16 = autocast_seconds(teacher, TrainBatch(x, y), args.reps)

    lengths = source.lengths.float()
    lines = [
        f"# Padding on {args.dataset}: random vs length-bucketed batches",
        "",
        f"`python -m bench.padding --dataset {args.dataset}` (read from {folder}): {data.num_users:,} users, "
        f"{data.num_items:,} items; "
        f"{len(inputs):,} training windows of up to {args.max_len} items (mode all), mean "
        f"{float(lengths.mean()):.1f} real items, median {float(lengths.median()):.0f}; batch {args.batch_size}; "
        f"{args.threads} thread(s) of {os.cpu_count()} CPUs, 1-min load average {os.getloadavg()[0]:.2f} "
        "at the end.",
        "",
        "| padding tokens | full width | random batches (trimmed) | bucketed |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {s['full width']:.1%} | {s['random batches']:.1%} | {s['bucketed']:.1%} |"
            for name, s in (("training epoch", train_padding), ("validation (batch 256)", valid_padding))
        ),
        "",
        "| one training epoch (fit, no validation) | random batches | bucketed | speed-up |",
        "|---|---:|---:|---:|",
        f"| student 2x64, {len(source)} steps | {student_s['random batches']:.1f} s | "
        f"{student_s['bucketed']:.1f} s | {student_s['random batches'] / student_s['bucketed']:.1f}x |",
        f"| teacher 2 layers (hidden {teacher.bert_config['hidden_size']}), {len(teacher_source)} steps "
        f"measured, whole epoch estimated | {teacher_s['random batches'] * scale:.0f} s | "
        f"{teacher_s['bucketed'] * scale:.0f} s | {teacher_s['random batches'] / teacher_s['bucketed']:.1f}x |",
        "",
        f"| teacher forward+backward, 32x{args.max_len} (no padding), {args.reps} reps | best | median | loss |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {best * 1000:.0f} ms | {median * 1000:.0f} ms | {loss:.4f} |"
            for label, (best, median, loss) in bf16.items()
        ),
        f"| bfloat16 speed-up | {bf16['float32'][0] / bf16['bfloat16 autocast'][0]:.2f}x | "
        f"{bf16['float32'][1] / bf16['bfloat16 autocast'][1]:.2f}x | |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"padding-{args.dataset}.md").write_text(text)


if __name__ == "__main__":
    main()
