import time

from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        time.sleep(600)
        return self.upscale(x)


SUBMISSION = Submission(name="sleeps", team="hostile", model=Net, requires_weights=False)
