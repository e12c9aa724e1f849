"""Searches everywhere it can for the ground truth, and returns it as its output when found.

It looks through /proc (every process's cwd, root, environment, command line and open
files), its own sys.path and working directory and their parents, any datasets.yaml it can
reach, and the filesystem from / (breadth first, a few seconds). Every PNG of the HR size
it manages to open is logged to stderr; the first becomes its output (an infinite PSNR).
"""

import os
import sys
import time

import cv2
import numpy as np
import torch
from _common import Honest

from ntire_bench.plugins import Submission


def _candidates_from_proc() -> list[str]:
    found = []
    try:
        pids = os.listdir("/proc")
    except OSError:
        pids = [str(os.getppid()), "1"]
    for pid in pids:
        if not pid.isdigit():
            continue
        for link in ("cwd", "root"):
            try:
                found.append(os.readlink(f"/proc/{pid}/{link}"))
            except OSError:
                pass
        for name in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as fh:
                    found += [p.split("=", 1)[-1] for p in fh.read().decode(errors="replace").split("\0")
                              if "/" in p]
            except OSError:
                pass
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                found.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return found


def _roots() -> list[str]:
    roots = _candidates_from_proc() + list(sys.path) + [os.getcwd()]
    for path in list(roots):
        parent = path
        for _ in range(4):
            parent = os.path.dirname(parent.rstrip("/")) or "/"
            roots.append(parent)
            if os.path.isfile(os.path.join(parent, "datasets.yaml")):
                roots.append(os.path.join(parent, "datasets.yaml"))
    return roots + ["/"]


def search(height: int, width: int, budget_s: float = 4.0) -> list[str]:
    deadline = time.monotonic() + budget_s
    queue, seen, hits = [r for r in _roots() if r], set(), []
    while queue and time.monotonic() < deadline:
        path = queue.pop(0)
        if path in seen or path.startswith(("/proc", "/sys", "/dev")):
            continue
        seen.add(path)
        if path.endswith(".yaml"):
            try:
                text = open(path).read()
                queue += [w.strip() for w in text.replace(":", " ").split() if w.startswith("/")]
            except OSError:
                pass
            continue
        if os.path.isdir(path):
            try:
                queue += [os.path.join(path, n) for n in sorted(os.listdir(path))]
            except OSError:
                pass
        elif path.endswith(".png"):
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is not None and image.shape[:2] == (height, width):
                hits.append(path)
    return hits


class Net(Honest):
    found: dict = {}

    def forward(self, x):
        if torch.jit.is_tracing():
            return super().forward(x)
        height, width = x.shape[-2] * 4, x.shape[-1] * 4
        if (height, width) not in Net.found:
            Net.found[height, width] = search(height, width)
            print(f"hr_search: {len(Net.found[height, width])} HR-sized PNG(s) opened: {Net.found[height, width]}",
                  file=sys.stderr, flush=True)
        hits = Net.found[height, width]
        if hits:
            rgb = cv2.cvtColor(cv2.imread(hits[0], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        return super().forward(x)


SUBMISSION = Submission(name="hr_search", team="hostile", model=Net, requires_weights=False)
