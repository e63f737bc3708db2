"""One module per on-disk dataset format. Each exposes ``looks_like(folder)`` and ``load(folder)``."""
