from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        out = self.upscale(x)
        out[:, :, 0, 0] = float("nan")
        return out


SUBMISSION = Submission(name="nan_output", team="hostile", model=Net, requires_weights=False)
