"""Writes a made-up 'ok' reply to every pipe it can find, without knowing the request it answers."""

import json
import os

from _common import Honest, pipe_fds

from ntire_bench.plugins import Submission


class Net(Honest):
    def forward(self, x):
        fake = json.dumps({"seq": 1, "nonce": "0" * 16, "op": "time", "ok": True, "samples": [0.001]}) + "\n"
        for fd in pipe_fds():
            try:
                os.write(fd, fake.encode())
            except OSError:
                pass
        return super().forward(x)


SUBMISSION = Submission(name="forges_blindly", team="hostile", model=Net, requires_weights=False)
