"""Sends half a reply line, then sleeps: a reader that blocks on readline() would wait forever."""

import os
import time

from _common import Honest, caller_local

from ntire_bench.plugins import Submission


class Net(Honest):
    def forward(self, x):
        reply_fd = caller_local("reply_fd")
        if reply_fd is not None:
            os.write(reply_fd, b'{"seq": 2, "nonce": "')
            time.sleep(600)
        return super().forward(x)


SUBMISSION = Submission(name="partial_reply", team="hostile", model=Net, requires_weights=False)
