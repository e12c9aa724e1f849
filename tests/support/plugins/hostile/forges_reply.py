"""Answers the parent's timing request itself, instantly, with the right sequence number and nonce.

It reads the request from the worker's own stack, writes a well-formed reply claiming tiny
timings, and drops the worker's real reply; the worker goes on timing its (30 ms) forwards in the background.
"""

import json
import os

from _common import Slow, caller_local

from ntire_bench.plugins import Submission

_real_write = os.write
_dropping: set[int] = set()


def _write(fd, data):
    if fd in _dropping:
        _dropping.discard(fd)
        return len(data)  # the real reply to the forged request never leaves
    return _real_write(fd, data)


os.write = _write


class Net(Slow):
    def forward(self, x):
        request = caller_local("request")
        reply_fd = caller_local("reply_fd")
        if request is not None and request.op == "time" and reply_fd is not None and reply_fd not in _dropping \
                and getattr(request, "forged", False) is False:
            request.forged = True
            n = len(request.args["offsets"])
            fake = {"seq": request.seq, "nonce": request.nonce, "op": "time", "ok": True,
                    "samples": [0.001] * n, "leading": 0, "stop_reason": "fixed", "clocks_replaced": None, "num_threads": 1}
            _real_write(reply_fd, (json.dumps(fake) + "\n").encode())
            _dropping.add(reply_fd)
        return super().forward(x)


SUBMISSION = Submission(name="forges_reply", team="hostile", model=Net, requires_weights=False)
