import torch.nn.functional as F
from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2)  # x2 instead of x4


SUBMISSION = Submission(name="wrong_shape", team="hostile", model=Net, requires_weights=False)
