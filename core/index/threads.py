"""CPU threads of the serving path: torch (the encoder) and FAISS (OpenMP, the search).

A serving process answers small batches (one request, or the few events of one consumer poll).
Intra-op parallelism cannot pay for itself on those, and idle OpenMP workers spin between
calls, taking CPU from the broker and the database on the same machine. So serving runs with
one thread each and scales out with processes (``docker compose up --scale consumer=N``).
``python -m bench.stream --threads N`` measures the consumer with N threads.
"""

from __future__ import annotations

import faiss
import torch


def serving_threads(threads: int = 1) -> None:
    """Use ``threads`` CPU threads for torch in this process and for FAISS in the calling thread
    (OpenMP's setting is per thread: call it from the thread that searches)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
