"""Checking a parsed ``competition.yaml`` against what Codabench enforces when it unpacks a v2 bundle.

Each rule is Codabench's own, read from its code (the comments name the file and function);
where Codabench refuses, the problem quotes its message. A few checks are stricter than
Codabench where its behaviour would surprise (an unused key, a phase that ends before it
starts). The phases are checked in validate_phases.py, pages, tasks and the files they name in
validate_tasks.py, the leaderboards in validate_leaderboards.py; archive.py reads the zip.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from ntire_bench.codabench.validate_common import Add, check_text, is_uuid, kind, says
from ntire_bench.codabench.validate_leaderboards import check_leaderboards, check_score_keys
from ntire_bench.codabench.validate_phases import check_phases, phase_warnings
from ntire_bench.codabench.validate_tasks import check_file_refs, check_pages, check_solutions, check_tasks
from ntire_bench.util.text import did_you_mean

# The top-level fields src/apps/competitions/unpackers/v2.py (V2Unpacker.__init__ and unpack) and
# src/apps/competitions/tasks.py (unpack_competition: version) read; any other is ignored there.
TOP_LEVEL_FIELDS = frozenset({
    "version", "title", "description", "image", "terms", "pages", "phases", "tasks", "solutions",
    "leaderboards", "fact_sheet", "docker_image", "registration_auto_approve", "make_programs_available",
    "make_input_data_available", "queue", "enable_detailed_results", "show_detailed_results_in_submission_panel",
    "show_detailed_results_in_leaderboard", "contact_email", "reward", "auto_run_submissions",
    "can_participants_make_submissions_public", "forum_enabled", "competition_type",
})
_BOOLS = (
    "registration_auto_approve", "make_programs_available", "make_input_data_available", "enable_detailed_results",
    "show_detailed_results_in_submission_panel", "show_detailed_results_in_leaderboard", "auto_run_submissions",
    "can_participants_make_submissions_public", "forum_enabled",
)
_STRINGS = ("description", "docker_image", "contact_email", "reward", "competition_type")
# Field sizes and choices of Competition (src/apps/competitions/models.py).
MAX_TITLE = 256
MAX_DOCKER_IMAGE = 128
MAX_REWARD = 256
MAX_EMAIL = 256
COMPETITION_TYPES = ("competition", "benchmark")
# CompetitionSerializer.validate_fact_sheet (src/apps/api/serializers/competitions.py).
FACT_SHEET_FIELDS = frozenset({"key", "type", "title", "selection", "is_required", "is_on_leaderboard"})
FACT_SHEET_TYPES = ("checkbox", "text", "select")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def validate_competition_yaml(
    data: Mapping[str, Any],
    score_keys: Collection[str] | None = None,
    bundle_files: Collection[str] | None = None,
) -> list[str]:
    """Check a parsed ``competition.yaml`` against Codabench's v2 unpacker; return the problems.

    An empty list means valid. ``score_keys``, when given, are the ``scores.json`` keys the
    scoring program writes: each must be a column that Codabench does not compute, and each
    such column must be written. ``bundle_files``, when given, are the bundle's member
    paths: every file the YAML names must be among them (a dataset key, a UUID, is also
    accepted where Codabench accepts one). Each problem is one line naming the field.
    """
    if not isinstance(data, Mapping):
        return [f"competition.yaml: the top level must be a mapping of fields (title, phases, ...), got {kind(data)}"]
    problems: list[str] = []
    add = problems.append
    _check_top_level(data, add)
    file_refs: list = []
    for key in ("image", "terms"):
        if isinstance(data.get(key), str) and data[key].strip():
            file_refs.append((key, data[key], False))
    check_pages(data.get("pages"), add, file_refs)
    task_indexes = check_tasks(data.get("tasks"), add, file_refs)
    check_solutions(data.get("solutions"), task_indexes, add, file_refs)
    check_phases(data.get("phases"), task_indexes, add, file_refs)
    columns = check_leaderboards(data.get("leaderboards"), add)
    if score_keys is not None and columns:  # with no columns at all, the leaderboard problem says it
        check_score_keys(columns, score_keys, add)
    check_file_refs(file_refs, bundle_files, add)
    return problems


def _check_top_level(data: Mapping[str, Any], add: Add) -> None:
    for key in data:
        if key not in TOP_LEVEL_FIELDS:
            hint = did_you_mean(str(key), TOP_LEVEL_FIELDS)
            add(f"{key}: not a Codabench competition field, it would be ignored" + (f"; {hint}" if hint else ""))
    # tasks.py, unpack_competition: str(version) picks the unpacker; none at all means the old v1.5 format.
    if str(data.get("version")) != "2":
        reason = ("; without one Codabench reads the bundle as its old v1.5 format" if "version" not in data else
                  says("A suitable version could not be found for this competition. Make sure one is supplied in "
                       "the yaml."))
        add(f"version: must be 2 (a Codabench v2 bundle), got {data.get('version')!r}" + reason)
    check_text(data.get("title"), "title", MAX_TITLE, add, "This field may not be null.")
    # base_unpacker.py, _unpack_image; v2.py, _unpack_terms: both are read as required keys.
    if not isinstance(data.get("image"), str) or not data["image"].strip():
        add(f"image: required, the logo file in the bundle; got {kind(data.get('image'))}"
            + says("An image for this competition could not be found in the yaml"))
    if not isinstance(data.get("terms"), str) or not data["terms"].strip():
        add(f"terms: required, the terms page's Markdown file in the bundle; got {kind(data.get('terms'))}"
            + says("A file containing the terms of this competition has not been supplied in the required location"))
    for key in _STRINGS:
        if key in data and not isinstance(data[key], str):
            add(f"{key}: expected a string, got {kind(data[key])}")
    for key in _BOOLS:
        if key in data and not isinstance(data[key], bool):
            add(f"{key}: expected true or false, got {data[key]!r}")
    image = data.get("docker_image")
    if isinstance(image, str):
        if not image.strip() or " " in image.strip():
            add(f"docker_image: {image!r} is not an image name like owner/image:tag")
        elif len(image) > MAX_DOCKER_IMAGE:
            add(f"docker_image: {len(image)} characters; Codabench allows at most {MAX_DOCKER_IMAGE}"
                + says(f"Ensure this field has no more than {MAX_DOCKER_IMAGE} characters."))
    email = data.get("contact_email")
    if isinstance(email, str) and (len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email)):
        add(f"contact_email: {email!r} is not an email address" + says("Enter a valid email address."))
    if isinstance(data.get("reward"), str) and len(data["reward"]) > MAX_REWARD:
        add(f"reward: longer than {MAX_REWARD} characters"
            + says(f"Ensure this field has no more than {MAX_REWARD} characters."))
    if isinstance(data.get("competition_type"), str) and data["competition_type"] not in COMPETITION_TYPES:
        add(f"competition_type: {data['competition_type']!r} is not one of {', '.join(COMPETITION_TYPES)}"
            + says(f'"{data["competition_type"]}" is not a valid choice.'))
    _check_queue(data.get("queue"), add)
    _check_fact_sheet(data.get("fact_sheet"), add)


def _check_queue(queue: Any, add: Add) -> None:
    """base_unpacker.py ``_unpack_queue``: the queue is looked up by ``vhost``, a UUIDField
    (src/apps/queues/models.py), among the queues the uploader owns or organises (or public ones)."""
    if not queue:
        return
    if not isinstance(queue, str):
        add(f"queue: {queue!r} is not the quoted vhost (a UUID) of a Codabench queue; quote it")
    elif not is_uuid(queue):
        add(f"queue: {queue!r} is not a UUID; give the vhost of your queue (a UUID, on the queue's page), not its name"
            + says(f"Unpacking the bundle failed. Here is the error log: ['“{queue}” is not a valid UUID.']"))


def _check_fact_sheet(sheet: Any, add: Add) -> None:
    if not sheet:
        return
    if not isinstance(sheet, Mapping):
        add(f"fact_sheet: expected a mapping of questions, got {kind(sheet)}" + says("Not valid JSON"))
        return
    for key, question in sheet.items():
        if not isinstance(question, Mapping):
            add(f"fact_sheet.{key}: expected a mapping with {', '.join(sorted(FACT_SHEET_FIELDS))}")
            continue
        odd = FACT_SHEET_FIELDS.symmetric_difference(question)
        if odd:
            add(f"fact_sheet.{key}: needs exactly the fields {', '.join(sorted(FACT_SHEET_FIELDS))}; "
                f"missing or extra: {', '.join(sorted(map(str, odd)))}" + says(f"Missing {{{', '.join(repr(k) for k in sorted(map(str, odd)))}}} values for {key}"))
        elif question["key"] != key:
            add(f"fact_sheet.{key}.key: {question['key']!r} must equal the question's name {key!r}"
                + says(f"key:{question['key']}  does not match JSON key:{key}"))
        elif question["type"] not in FACT_SHEET_TYPES:
            add(f"fact_sheet.{key}.type: {question['type']!r} is not one of {', '.join(FACT_SHEET_TYPES)}"
                + says(f"{question['type']} is not a valid question type"))


def competition_warnings(data: Any) -> list[str]:
    """What Codabench accepts but silently changes or leaves to chance: no queue of the competition's own."""
    if not isinstance(data, Mapping):
        return []
    has_queue = bool(data.get("queue"))
    warnings = phase_warnings(data.get("phases"), has_queue)
    tasks = data.get("tasks") if isinstance(data.get("tasks"), list) else []
    if not has_queue and any(isinstance(t, Mapping) and "ingestion_program" in t for t in tasks):
        warnings.append("queue: none, so submitted code runs on Codabench's default workers, which need not have a "
                        "GPU; set queue to the vhost of a GPU queue you own or organise (it serves every phase)")
    return warnings
