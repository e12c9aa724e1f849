"""The Codabench bundle's pages and README: what participants and organisers read about a generated competition."""

from __future__ import annotations

from datetime import datetime

from ntire_bench.util.version import __version__

from ntire_bench.codabench.spec import BundleSpec, CODE_PHASE, COLUMN_KEYS, DEFAULT_DOCKER_IMAGE, DEFAULT_QUEUE_TIME_LIMIT_S, NOT_RANKED_VALUE, NO_PSNR_VALUE, RESULTS_PHASE, VALID_DATASET, WORKER_IMAGE_DIR, input_path, reference_path
from ntire_bench.scoring.editions import Edition

# --------------------------------------------------------------------------- pages


def _when(moment: datetime | None) -> str:
    return "open-ended" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _thresholds_text(edition: Edition) -> str:
    if edition.thresholds_from_results or not edition.thresholds:
        return "the PSNR threshold the organisers announce for each set"
    return ", ".join(f"{db:.2f} dB on {name}" for name, db in edition.thresholds.items())


def pages_text(spec: BundleSpec, edition: Edition) -> dict[str, str]:
    phase_lines = []
    for phase in spec.phases:
        what = ("upload the SR outputs (PNG) of the LR images; the leaderboard shows PSNR"
                if phase.kind == RESULTS_PHASE else
                "upload your code and weights; we run them on our GPU, measure PSNR, runtime, FLOPs "
                "and parameters, and rank by Score_Final")
        phase_lines.append(f"- **{phase.name}** ({_when(phase.start)} to {_when(phase.end)}), "
                           f"{', '.join(phase.datasets)}: {what}.")
    weights = edition.weights
    runtime_on = (f"averaged over {' and '.join(edition.runtime_datasets)}" if edition.runtime_datasets
                  else "over the scored sets")
    not_ranked, no_psnr = f"{NOT_RANKED_VALUE:.0f}", f"{NO_PSNR_VALUE:g}"
    column_rows = "\n".join(f"| {c.title} | `{c.key}` | {'lower' if c.sorting == 'asc' else 'higher'} | {c.meaning} |"
                            for c in spec.columns)
    overview = f"""# {spec.title}

{spec.description}

Super-resolve low-resolution images by x{spec.scale}. A network is eligible when its PSNR
reaches {_thresholds_text(edition)}; eligible networks are ranked by how little runtime,
FLOPs and parameters they need compared with the baseline (`{edition.baseline}`).

## Phases

{chr(10).join(phase_lines)}

All times are UTC. Scoring reproduces the official NTIRE Efficient SR evaluation code
(harness: ntire-bench {__version__}, scoring edition `{spec.edition}`).
"""
    evaluation = f"""# Evaluation

## Quality

PSNR is computed on RGB, in dB, between your x{spec.scale} output and the HR image, after
rounding both to 8 bits and dropping {spec.scale} pixels on every side, exactly as the
official NTIRE code does. SSIM is reported in the detailed results. A submission is eligible
only if its PSNR reaches {_thresholds_text(edition)}.

## Efficiency (code phases)

- **Runtime**: mean per-image runtime {runtime_on}, on the organisers' GPU. The baseline
  is timed on the same worker in the same job (or, when the organisers ship its figures,
  on the same GPU model with the same harness and settings), so the comparison is fair.
- **FLOPs** for one 256x256 LR input, and **parameters**, counted like the official code.

Each is turned into a score against the baseline `{edition.baseline}`, and the scores are
combined with weights {weights['runtime']:g} / {weights['flops']:g} / {weights['params']:g}:

```
Score_Runtime = exp(2 * runtime / runtime_baseline)
Score_FLOPs   = exp(2 * FLOPs   / FLOPs_baseline)
Score_Params  = exp(2 * params  / params_baseline)
Score_Final   = {weights['runtime']:g} * Score_Runtime + {weights['flops']:g} * Score_FLOPs + {weights['params']:g} * Score_Params
```

Lower is better; the baseline scores exp(2) = 7.389. Codabench's own column arithmetic can
only sum, average or take the min or max of columns, so it cannot compute these
exp-weighted scores: the scoring program computes `Score_Final` and every score column
itself. A submission under the PSNR threshold is listed with Score_Final {not_ranked}
(not ranked), below every eligible one; its detailed results give the score it would have
had and the reason.

## Leaderboard

The leaderboard is sorted by Score_Final (ascending), ties by the columns from left to right.
The development phase measures only PSNR: every column it does not measure shows
{not_ranked} ({no_psnr} for a PSNR column), so it is ranked by PSNR valid (descending).

| column | key | better | meaning |
|---|---|---|---|
{column_rows}
"""
    submission = f"""# Submission

## Development phase: SR images

Upload a zip of PNG files, one per LR input, named after it: `0801x{spec.scale}.png` (or
the HR name, `0801.png`). The images may sit at the root of the zip or inside one folder.
Each must be an 8-bit RGB PNG (no alpha, not greyscale, not 16-bit) of exactly x{spec.scale} the LR
size. JPEG and other formats are refused: compression changes the pixels and the PSNR.
Nested folders, zips inside the zip, links and encrypted zips are refused. Every problem
is reported in the scoring log, one line per file.

## Final phase: code

Upload a zip with your model code and its weights: at its top level a `submission.py`
declaring `SUBMISSION = Submission(...)` (see `ntire_bench.plugins`), or an NTIRE team
declaration `submission.yaml`, with the weights file it names next to it, any other
modules in sub-folders, and a file named `metadata` holding `description: <your model>` and
no `command:` (the organisers' ingestion program runs your code; a submission whose own
command runs is refused). It runs in the competition's image, in the
harness's sandbox, and sees only the LR images; the HR images never enter that container.

## When a submission cannot be scored

It is marked Failed (and does not count as a scored submission). The scoring log says why
in one line; the detailed results list every problem, one line per file.
"""
    terms = f"""# Terms

- One account per team; teams may not share code or results during the challenge.
- The final ranking uses the organisers' measurements on their hardware; the organisers
  may re-run, inspect or disqualify any submission.
- Winning teams must submit a fact sheet and their code for the challenge report.
- Training on the validation or test HR images is forbidden.
- Participants agree to the NTIRE challenge rules published with {spec.title}.
"""
    return {"overview": overview, "evaluation": evaluation, "submission": submission, "terms": terms}


def readme_text(spec: BundleSpec) -> str:
    locked = ("\n- `scoring_program_results/metadata.yaml`: the same with `--phase results`, for the results "
              "phases\n  (`scoring_program/` then says `--phase code`): an upload is never read as an "
              "ingestion's output." if spec.lock_phases else "")
    data_lines = []
    for phase in spec.phases:
        sets = ", ".join(phase.datasets)
        data_lines.append(f"- `{reference_path(phase)}`: the HR images of {sets} (phase {phase.name}).")
        if phase.kind == CODE_PHASE:
            data_lines.append(f"- `{input_path(phase)}`: the LR inputs of {sets} (phase {phase.name}).")
    image = f"REGISTRY/ntire-bench-worker:{__version__}"
    placeholder = spec.docker_image == DEFAULT_DOCKER_IMAGE
    named = (f"`docker_image` is the placeholder `{spec.docker_image}`, which no worker can pull: name your image "
             "as below." if placeholder else f"`docker_image` is `{spec.docker_image}`: it must be this image.")
    longest = max((p.execution_time_limit_s for p in spec.phases), default=0)
    if spec.queue:
        queue = (f"`queue` is `{spec.queue}`: the whole competition (every phase, uploads included) runs on that "
                 "queue's workers, with each phase's own `execution_time_limit`.")
    else:
        queue = (f"There is no `queue`: the competition runs on Codabench's default queue, whose workers need not "
                 f"have a GPU, and every phase's `execution_time_limit` is cut to that queue's limit "
                 f"({DEFAULT_QUEUE_TIME_LIMIT_S} s unless the site sets another)"
                 + (f", so the {longest} s given here become {DEFAULT_QUEUE_TIME_LIMIT_S} s"
                    if longest > DEFAULT_QUEUE_TIME_LIMIT_S else "")
                 + ". Regenerate with `--queue VHOST`, the UUID on your GPU queue's page (its name is not accepted).")
    return f"""# Codabench bundle: {spec.title}

Generated by ntire-bench {__version__} (scoring edition `{spec.edition}`).

## What the organiser must add

The harness never bundles ground truth. `competition.yaml` names these files, which you add
to this bundle before uploading it (Codabench refuses the bundle while one is missing):

{chr(10).join(data_lines)}

Inside each zip, put one folder per dataset, named exactly as the dataset, holding the PNG
images with their NTIRE names: `{VALID_DATASET}/0801.png` for HR, `{VALID_DATASET}/0801x{spec.scale}.png`
for LR. Instead of a file you may write the key (UUID) of a dataset already uploaded to
Codabench in `competition.yaml`.

Then unzip this bundle, add the files, and zip the *contents* (not the folder). Check it:

```
ntire-bench codabench check bundle.zip
```

## The worker image

The programs run `ntire-bench` from the competition's docker image and install nothing when
they start: compute workers may have no network. `{WORKER_IMAGE_DIR}/` is that image's build
context: a `Dockerfile` on `{spec.base_image}` (CUDA, cuDNN and torch), `requirements.txt`
(every other dependency, pinned) and the wheel of this harness. {named}

```
docker build --tag {image} {WORKER_IMAGE_DIR}/
docker push {image}
ntire-bench codabench bundle ... --docker-image {image}    # regenerate with the same options
```

Push it to a registry the queue's workers can pull from (a private one needs `docker login`
on each worker). Rebuild the image whenever you regenerate the bundle with another harness
version. Codabench ignores `{WORKER_IMAGE_DIR}/` in the uploaded bundle.

## Queue and limits

{queue}

## Also check

- The phase dates in `competition.yaml` are placeholders unless you set them; times are UTC,
  written as quoted strings (an unquoted YAML timestamp would lose its time of day on
  Codabench), and each phase ends before the next starts (Codabench refuses an end equal to
  the next start).
- The scoring program writes `scores.json` with the leaderboard column keys
  ({', '.join(COLUMN_KEYS)}) and `detailed_results.html` (per-image results and problems). A
  submission that cannot be scored exits 1 (its fault) or 2 (the setup's), with one line on
  stderr and no `scores.json`; Codabench marks it Failed, uploads the logs and the detailed
  results, and keeps it off the leaderboard.
- Code phases need the baseline's figures for Score_Final: add its plugin and weights as
  `baseline/` inside the LR input zip (timed in the same job: fairest), or its results file,
  measured in this image on the same GPU model with the same settings, as `baseline.json` in
  the HR reference zip.
- The worker writes its own `metadata` file into each output folder, so the programs never
  write one; in a code phase the scoring program refuses a submission whose own `command` ran.
- Only the first leaderboard is attached to the phases, and a column with `computation`
  is filled by Codabench: `Score_Final` is therefore computed by the scoring program.

## Contents

- `competition.yaml`, `logo.png`, `pages/*.md`
- `scoring_program/metadata.yaml`: runs `ntire-bench codabench score` on `/app/input/ref`
  (HR) and `/app/input/res` (SR images or the ingestion's output), writes to `/app/output`.{locked}
- `ingestion_program/metadata.yaml`: runs `ntire-bench codabench ingest` on the submitted
  code (`/app/ingested_program`) and the LR inputs (`/app/input_data`).
- `{WORKER_IMAGE_DIR}/`: the worker image's build context (above).

docs/codabench.md (in the ntire-bench repository) describes the layouts and exit conventions.
"""
