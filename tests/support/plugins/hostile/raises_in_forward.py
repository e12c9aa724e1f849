from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        raise ValueError("forward exploded")


SUBMISSION = Submission(name="raises_in_forward", team="hostile", model=Net, requires_weights=False)
