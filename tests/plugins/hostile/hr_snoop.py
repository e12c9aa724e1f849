"""Looks everywhere it is given something for a path to HR images, and reports what it finds."""

import os
import sys

from _common import Base, declare

REPORT = "/tmp/ntire_bench_hr_snoop_report.txt"  # the test reads it back


def _strings_seen() -> list[str]:
    seen = list(sys.argv) + [f"{k}={v}" for k, v in os.environ.items()] + [os.getcwd()]
    for fd in os.listdir("/proc/self/fd"):
        try:
            seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    with open("/proc/self/cmdline", "rb") as fh:
        seen += fh.read().decode(errors="replace").split("\0")
    for root, _dirs, files in os.walk(os.getcwd()):
        seen += [os.path.join(root, f) for f in files]
    return seen


class Net(Base):
    def forward(self, x):
        with open(REPORT, "a") as fh:
            for text in _strings_seen():
                fh.write(text + "\n")
        return self.upscale(x)


SUBMISSION = declare("hr_snoop", Net)
