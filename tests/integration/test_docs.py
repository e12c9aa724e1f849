"""The documentation is tested against the code: the results format tables and example, the README."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from ntire_bench.results import records

from support.paths import REPO

DOCS = REPO / "docs"
SECTIONS = {
    "SubmissionResult": records.SubmissionResult, "ComplexityResult": records.ComplexityResult,
    "CheckpointInfo": records.CheckpointInfo, "PluginInfo": records.PluginInfo,
    "DatasetResult": records.DatasetResult, "ImageResult": records.ImageResult,
    "SampleStats": records.SampleStats, "RuntimeStats": records.RuntimeStats,
    "TimingAudit": records.TimingAudit, "Settings": records.Settings, "Environment": records.Environment,
    "SandboxInfo": records.SandboxInfo, "AuditedComplexity": records.AuditedComplexity,
}


def _tables(text: str) -> dict[str, set[str]]:
    tables, current = {}, None
    for line in text.splitlines():
        heading = re.match(r"^## (\w+)", line)
        if heading:
            current = heading.group(1)
            continue
        if current and line.startswith("| `"):
            names = re.findall(r"`(\w+)`", line.split("|")[1])
            tables.setdefault(current, set()).update(names)
    return tables


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_record_field_is_documented_and_nothing_else(section):
    documented = _tables((DOCS / "results-format.md").read_text())[section]
    fields = {f.name for f in dataclasses.fields(SECTIONS[section])} - {"origin"}
    assert documented == fields


def test_the_documented_example_is_a_valid_results_file():
    text = (DOCS / "results-format.md").read_text()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    record = records.SubmissionResult.from_json(json.loads(example), strict=True)
    assert record.datasets["Set5"].images[0].runtime_ms.stop_reason == "cap"
    assert record.to_json()["params"] == 317218


ROOT = DOCS.parent


def test_the_readme_layout_names_every_package_and_only_real_ones():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"^  (\w+)/", layout, flags=re.M))
    packages = {p.parent.name for p in (ROOT / "ntire_bench").glob("*/__init__.py")}
    assert packages <= named, f"missing from the README layout: {sorted(packages - named)}"
    assert named <= packages, f"named in the README layout but absent: {sorted(named - packages)}"


def test_the_readme_links_and_benchmarks_exist():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    local = [link for link in links if "://" not in link]  # web links are not checked offline
    assert "docs/ray.md" in local
    for link in local:
        assert (ROOT / link).exists(), link
    for script in re.findall(r"`(benchmarks/\w+/\w+\.py)", readme):
        assert (ROOT / script).is_file(), script
    assert "make test" in readme and "make run" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()  # CI runs the README's test command
