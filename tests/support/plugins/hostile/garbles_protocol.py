import os

from _common import Base, pipe_fds

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        # Write junk to every pipe that might carry the harness's replies.
        for fd in pipe_fds():
            try:
                os.write(fd, b"garbage that is not json\n")
            except OSError:
                pass
        return self.upscale(x)


SUBMISSION = Submission(name="garbles_protocol", team="hostile", model=Net, requires_weights=False)
