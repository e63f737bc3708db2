"""Typed, frozen settings for every kdrec process.

One `Settings` object is built at start-up (``Settings()`` reads ``KDREC_*`` environment
variables and an optional ``.env`` file) and passed down. Nothing below the CLI reads the
environment itself. Nested groups use ``__`` in variable names, e.g.
``KDREC_KAFKA__BOOTSTRAP_SERVERS`` or ``KDREC_STUDENT__HIDDEN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "KDREC_"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Frozen):
    """How to reach Kafka. Security options pass straight through to kafka-python."""

    bootstrap_servers: str = "127.0.0.1:19092"
    events_topic: str = "kdrec.events"
    dlq_topic: str = "kdrec.events.dlq"
    recommendations_topic: str = "kdrec.recommendations"
    control_topic: str = "kdrec.control"
    items_topic: str = "kdrec.items"
    """New and changed catalogue items (``stream.items``), served from their text at once."""
    items_dlq_topic: str = "kdrec.items.dlq"
    consumer_group: str = "kdrec-recs"
    partitions: int = Field(default=4, ge=1)
    session_timeout_ms: int = Field(default=6000, ge=1000)
    heartbeat_interval_ms: int = Field(default=2000, ge=100)
    max_poll_records: int = Field(default=500, ge=1)
    max_event_bytes: int = Field(default=4096, ge=64)
    max_item_bytes: int = Field(default=65536, ge=256)
    """Largest item record accepted on the items topic (titles and text fields)."""
    linger_ms: int = Field(default=1, ge=0)
    """How long the click producer waits to batch records: each waits at most this long before
    it is sent, so it adds to event -> recommendation latency (Kafka's own default is 5)."""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    embedded_broker: bool = True
    """Start the bundled local broker when the bootstrap servers are on loopback and unreachable."""

    def client_options(self) -> dict[str, object]:
        """Options common to every kafka-python client (connection and security)."""
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        for key in (
            "sasl_mechanism",
            "sasl_plain_username",
            "sasl_plain_password",
            "ssl_cafile",
            "ssl_certfile",
            "ssl_keyfile",
        ):
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        return options


class TeacherConfig(_Frozen):
    """The pre-trained LM teacher."""

    checkpoint: str | None = None
    """A local BERT-family checkpoint folder; None means the bundled all-MiniLM-L6-v2."""
    objective: Literal["causal", "cloze"] = "causal"
    max_len: int = Field(default=50, ge=2)
    num_layers: int | None = None
    """Keep only the first N transformer layers (None: all of them)."""
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    """Dropout of the LM's layers, attention and input embeddings: 0.3, chosen by validation among
    0.1 (the LM's own), 0.3 and 0.5 on sparse Amazon Toys (``bench.quality --study dropout``); at
    0.1 the teacher's free item table overfits there."""
    mask_prob: float = Field(default=0.2, gt=0.0, lt=1.0)
    pretrained: bool = True
    items: Literal["free", "text+id", "text"] = "free"
    """How the teacher represents items: ``free``, an embedding table that starts from the LM's
    text encodings and is then learnt freely; ``text+id``, a learnt adaptor of the (fixed) text
    encodings plus an ID embedding that starts at zero (UniSRec/Recformer's text + ID idea), so a
    rarely seen item stays close to what its text says; ``text``, the adaptor alone."""


class StudentConfig(_Frozen):
    """The small distilled student."""

    hidden: int = Field(default=64, ge=8)
    num_layers: int = Field(default=2, ge=1)
    num_heads: int = Field(default=2, ge=1)
    max_len: int = Field(default=50, ge=2)
    """Items the student reads: the last 50 (trained on every training item, cut into windows of
    50). At the same CPU budget it learns far faster than 200 (bench/results/quality-ml1m-recipe.md)
    and each recommendation costs a quarter of the encoding."""
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)


class TrainConfig(_Frozen):
    """Optimisation knobs shared by teacher and student training."""

    epochs: int = Field(default=200, ge=0)
    batch_size: int = Field(default=32, ge=1)
    """Small batches: many more updates per CPU-minute (bench/results/quality-ml1m-recipe.md)."""
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_steps: int = Field(default=100, ge=0)
    patience: int = Field(default=5, ge=1)
    plateau_factor: float = Field(default=1.0, gt=0.0, le=1.0)
    """After an evaluation without improvement, training goes on from the best weights so far
    with the learning rate multiplied by this (1: the same rate, from where it is). Early
    stopping then ends on a model that was also given smaller steps, whatever the budget."""
    eval_every: int = Field(default=1, ge=1)
    seed: int = 42
    device: str = "auto"
    max_minutes: float | None = None
    bucket_by_length: bool = True
    """Batch training windows of similar length together, each padded only to its own longest
    (False: random batches, the order of earlier versions)."""
    autocast_cpu: bool = False
    """Train under bfloat16 autocast on the CPU too (CUDA always trains under it)."""


class TeacherTrainConfig(TrainConfig):
    """Teacher training (fine-tuning the LM): a lower learning rate."""

    lr: float = Field(default=5e-4, gt=0)


class StudentTrainConfig(TrainConfig):
    """Student training, alone or distilled: small batches and a higher learning rate learn far
    more per CPU-minute (bench/results/quality-ml1m-recipe.md)."""

    lr: float = Field(default=2e-3, gt=0)


class DistillConfig(_Frozen):
    """Knowledge distillation: alpha * CE + (1 - alpha) * T^2 * KL(teacher || student)."""

    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    temperature: float = Field(default=1.0, gt=0.0)
    """The quality benchmark's recipe (alpha 0.5, T 1, with embedding transfer): see
    bench/results/quality-amazontoys.md and quality-ml1m-selection.md."""
    top_k: int = Field(default=100, ge=1)
    hidden_weight: float = Field(default=0.0, ge=0.0)
    transfer: bool = True
    """Start the student's item table from the teacher's item representations (PCA to the
    student's width, ``core.distill.transfer``) before distilling: on by default, as the quality
    benchmark's validation chose "student + KD + transfer" over "student + KD" on Amazon Toys."""


class ServeConfig(_Frozen):
    """Real-time serving: how many recommendations, which index."""

    top_k: int = Field(default=10, ge=1, le=1000)
    index: Literal["flat", "hnsw"] = "flat"
    hnsw_m: int = Field(default=32, ge=4)


class JobsConfig(_Frozen):
    """The scheduled refit → redistil → reindex pipeline."""

    interval_minutes: float = Field(default=60.0, gt=0)
    cron: str | None = None
    tolerance: float = Field(default=0.005, ge=0.0)
    keep_versions: int = Field(default=5, ge=1)
    """Artifact folders kept on disk per model kind (the active version is always kept)."""
    lock_ttl_seconds: int = Field(default=600, ge=10)
    """The pipeline lease expires this long after its holder's last heartbeat."""
    teacher_epochs: int = Field(default=3, ge=0)
    """Epochs of the warm-started teacher refit (0: the active teacher unchanged)."""
    teacher_max_minutes: float | None = Field(default=10.0, gt=0)
    teacher_lr: float | None = Field(default=None, gt=0)
    """Learning rate of the teacher refit (None: ``Settings.train.lr``, the teacher's)."""
    teacher_windows: Literal["all", "last"] = "all"
    student_epochs: int = Field(default=20, ge=0)
    """Epochs of the student redistillation (0: an untrained student, always rejected)."""
    student_max_minutes: float | None = Field(default=5.0, gt=0)
    valid_users: int | None = Field(default=2000, ge=1)
    """Validation users for early stopping during the refit (None: all)."""


class Settings(BaseSettings):
    """Everything a kdrec process needs to know, read once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    database_url: str = "sqlite:///var/kdrec.db"
    data_dirs: tuple[Path, ...] = (Path("../shared/data"), Path("var/data"))
    """Folders searched, in order, for a dataset named by its id (e.g. ``ml-1m``)."""
    download_dir: Path = Path("var/data")
    artifact_dir: Path = Path("var/artifacts")
    sequence_length: int = Field(default=200, ge=1)
    """How many of each user's most recent items the store keeps."""
    dataset: str = "ml-100k"
    text_columns: tuple[str, ...] | None = None
    """Columns of an item-table ``items.csv`` that the LM reads (e.g. ``["title","brand"]``);
    None: every text column (see core/data/formats/item_table.py)."""
    log_level: str = "INFO"

    kafka: KafkaSettings = KafkaSettings()
    teacher: TeacherConfig = TeacherConfig()
    student: StudentConfig = StudentConfig()
    train: TeacherTrainConfig = TeacherTrainConfig()
    """Teacher training (``KDREC_TRAIN__*``)."""
    student_train: StudentTrainConfig = StudentTrainConfig()
    """Student training (``KDREC_STUDENT_TRAIN__*``)."""
    distill: DistillConfig = DistillConfig()
    serve: ServeConfig = ServeConfig()
    jobs: JobsConfig = JobsConfig()

    @field_validator("train", "student_train", mode="before")
    @classmethod
    def _own_defaults(cls, value: object) -> object:
        """A plain ``TrainConfig`` passed in keeps what it sets; the rest are this field's defaults."""
        return value.model_dump(exclude_unset=True) if isinstance(value, TrainConfig) else value


class SettingsError(ValueError):
    """Raised when the environment holds invalid settings; names each variable."""


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, turning validation errors into a readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            variable = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
            lines.append(f"{variable}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
