import os

from _common import Base, declare


class Net(Base):
    def forward(self, x):
        # Write junk to every inherited descriptor that might carry the harness's replies.
        for fd in range(3, 16):
            try:
                os.write(fd, b"garbage that is not json\n")
            except OSError:
                pass
        return self.upscale(x)


SUBMISSION = declare("garbles_protocol", Net)
