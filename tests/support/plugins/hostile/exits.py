import os

from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        os._exit(3)


SUBMISSION = Submission(name="exits", team="hostile", model=Net, requires_weights=False)
