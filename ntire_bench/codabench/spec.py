"""What a Codabench bundle is made of: phases, leaderboard columns, program folders and the limits Codabench sets.

Shared by the generator (bundle.py), its pages (pages.py), the checker (validate.py) and the
programs (programs.py, ingest.py), so none of them imports another for a constant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ntire_bench.util.version import __version__


RESULTS_PHASE = "results"  # participants upload SR images


CODE_PHASE = "code"  # participants upload code that the ingestion program runs


PHASE_KINDS = (RESULTS_PHASE, CODE_PHASE)


VALID_DATASET = "DIV2K_LSDIR_valid"


TEST_DATASET = "DIV2K_LSDIR_test"


DEFAULT_BUNDLE_EDITION = "ntire2026"


# The CUDA PyTorch image the worker image is built on (worker_image/Dockerfile); its torch is the one this
# harness is tested with. The programs need the harness inside the image: nothing is installed at run time.
WORKER_BASE_IMAGE = "pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime"


# competition.yaml's docker_image until the organiser names the image they built and pushed. A short name
# resolves to Docker Hub's official-image namespace, where nobody but Docker can publish it: a worker fails
# to pull it ("Pull for ... failed!") rather than running a stranger's image.
DEFAULT_DOCKER_IMAGE = f"ntire-bench-worker:{__version__}"


TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # how phase times are written (UTC), as quoted strings


WORKER_IMAGE_DIR = "worker_image"  # in the bundle: the Dockerfile, the pinned requirements and the harness wheel


# Without a queue of its own, a competition runs on Codabench's default queue, where every phase's
# execution_time_limit is cut to the site's MAX_EXECUTION_TIME_LIMIT (src/apps/competitions/tasks.py,
# _send_to_compute_worker; 600 s unless the site sets it otherwise).
DEFAULT_QUEUE_TIME_LIMIT_S = 600


DEFAULT_SCORING_COMMAND = "ntire-bench codabench score --input /app/input --output /app/output --edition {edition}"


DEFAULT_INGESTION_COMMAND = (
    "ntire-bench codabench ingest --submission /app/ingested_program --input /app/input_data --output /app/output"
)


SCORING_PROGRAM_DIR = "scoring_program"


RESULTS_SCORING_PROGRAM_DIR = "scoring_program_results"  # with lock_phases: the results phases' own program


INGESTION_PROGRAM_DIR = "ingestion_program"


LEADERBOARD_KEY = "main"


# Limits and choices of Codabench's models and serializers.
MAX_COLUMN_TITLE = 36


MAX_COLUMN_KEY = 36


MAX_LEADERBOARD_TITLE = 64


MAX_LEADERBOARD_KEY = 36


SORTINGS = ("asc", "desc")


COMPUTATIONS = ("sum", "avg", "min", "max")


SUBMISSION_RULES = ("Add", "Add_And_Delete", "Add_And_Delete_Multiple", "Force_Last", "Force_Latest_Multiple", "Force_Best")


class BundleError(ValueError):
    """A bundle cannot be generated or read; the message is one line saying what to fix."""


@dataclass(frozen=True)
class LeaderboardColumn:
    """One leaderboard column: its ``key`` is the ``scores.json`` key the scoring program writes."""

    key: str
    title: str
    sorting: str
    precision: int
    meaning: str


COLUMNS: tuple[LeaderboardColumn, ...] = (
    LeaderboardColumn("psnr_valid", "PSNR valid (dB)", "desc", 2, f"RGB PSNR on {VALID_DATASET}"),
    LeaderboardColumn("psnr_test", "PSNR test (dB)", "desc", 2, f"RGB PSNR on {TEST_DATASET}"),
    LeaderboardColumn("score_final", "Score_Final", "asc", 4, "weighted sum of the three scores below; lower is better"),
    LeaderboardColumn("score_runtime", "Runtime score", "asc", 4, "exp(2 * runtime / baseline runtime)"),
    LeaderboardColumn("score_flops", "FLOPs score", "asc", 4, "exp(2 * FLOPs / baseline FLOPs)"),
    LeaderboardColumn("score_params", "Params score", "asc", 4, "exp(2 * params / baseline params)"),
    LeaderboardColumn("runtime_ms", "Runtime (ms)", "asc", 2, "mean per-image runtime, milliseconds"),
    LeaderboardColumn("params_m", "Params (M)", "asc", 4, "parameters, millions"),
    LeaderboardColumn("flops_g", "FLOPs (G)", "asc", 2, "FLOPs for one 256x256 LR input, billions"),
)


# The keys the scoring program may write to scores.json: exactly the leaderboard's columns.
COLUMN_KEYS: tuple[str, ...] = tuple(column.key for column in COLUMNS)


PRIMARY_SCORE_KEY = "score_final"


# Which dataset's RGB PSNR each PSNR column shows; reference folders are named after these datasets.
PSNR_COLUMNS: dict[str, str] = {"psnr_valid": VALID_DATASET, "psnr_test": TEST_DATASET}


# A custom edition file travels inside each program folder under this name (the programs run there).
EDITION_FILE = "edition.yaml"


# What the scoring program writes for a column it has no value for (Codabench cannot store null).
NOT_RANKED_VALUE = 1e9  # asc columns: sorts last; real scores are capped here


NO_PSNR_VALUE = 0.0  # PSNR columns


@dataclass(frozen=True)
class PhaseSpec:
    """One competition phase: SR-image uploads (``results``) or code run by ingestion (``code``).

    ``datasets`` are the sets the phase scores; their HR images are the phase's reference
    data and, for a code phase, their LR images its input data. Times are UTC.
    """

    name: str
    kind: str
    start: datetime
    end: datetime | None
    datasets: tuple[str, ...]
    description: str = ""
    max_submissions_per_day: int = 5
    max_submissions: int = 100
    execution_time_limit_s: int = 600

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "phase"


def ntire_phases(
    dev_start: datetime = datetime(2026, 1, 20),
    test_start: datetime = datetime(2026, 3, 14),
    test_end: datetime = datetime(2026, 3, 21),
    valid_dataset: str = VALID_DATASET,
    test_dataset: str = TEST_DATASET,
) -> tuple[PhaseSpec, PhaseSpec]:
    """The two NTIRE ESR phases: SR uploads on the validation set, then code on valid + test.

    Development ends one second before Final starts: Codabench refuses a phase that starts at the
    very moment the previous one ends. The default dates are placeholders for the organiser to replace.
    """
    development = PhaseSpec(
        name="Development",
        kind=RESULTS_PHASE,
        start=dev_start,
        end=test_start - timedelta(seconds=1),
        datasets=(valid_dataset,),
        description=f"Upload the x4 SR outputs of the {valid_dataset} LR images; scored by PSNR.",
        max_submissions_per_day=5,
        max_submissions=100,
        execution_time_limit_s=600,
    )
    final = PhaseSpec(
        name="Final",
        kind=CODE_PHASE,
        start=test_start,
        end=test_end,
        datasets=(valid_dataset, test_dataset),
        description="Upload your code and weights; we run it, time it and rank it by Score_Final.",
        max_submissions_per_day=2,
        max_submissions=10,
        execution_time_limit_s=3600,
    )
    return development, final


@dataclass(frozen=True)
class BundleSpec:
    """Everything ``write_bundle`` needs. ``{edition}`` in a command becomes ``edition``.

    ``docker_image`` must hold the harness: the programs run it and install nothing (compute
    workers may have no network). The bundle's ``worker_image/`` builds such an image on
    ``base_image``. ``queue`` is the vhost (a UUID) of the Codabench queue the whole
    competition runs on; without one, every phase's time limit is capped at the default
    queue's (``DEFAULT_QUEUE_TIME_LIMIT_S``).
    """

    title: str = "NTIRE 2026 Efficient Super-Resolution Challenge (x4)"
    description: str = (
        "Design an x4 super-resolution network that keeps the baseline's PSNR while running "
        "faster and using fewer FLOPs and parameters."
    )
    edition: str = DEFAULT_BUNDLE_EDITION
    phases: tuple[PhaseSpec, ...] = field(default_factory=ntire_phases)
    columns: tuple[LeaderboardColumn, ...] = COLUMNS
    primary_key: str = PRIMARY_SCORE_KEY
    docker_image: str = DEFAULT_DOCKER_IMAGE
    base_image: str = WORKER_BASE_IMAGE
    scoring_command: str = DEFAULT_SCORING_COMMAND
    ingestion_command: str = DEFAULT_INGESTION_COMMAND
    submission_rule: str = "Force_Last"
    contact_email: str | None = None
    queue: str | None = None
    scale: int = 4
    # One scoring program per phase kind, each told its phase (--phase results|code), so an upload to a
    # results phase can never pass itself off as an ingestion's output. Off: one program guesses the phase.
    lock_phases: bool = True


def reference_path(phase: PhaseSpec) -> str:
    return f"reference_data/{phase.slug}_hr.zip"


def input_path(phase: PhaseSpec) -> str:
    return f"input_data/{phase.slug}_lr.zip"
