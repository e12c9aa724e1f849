import ctypes

from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        ctypes.string_at(0)  # dereference NULL: SIGSEGV
        return self.upscale(x)


SUBMISSION = Submission(name="segfaults", team="hostile", model=Net, requires_weights=False)
