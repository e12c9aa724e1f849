from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        return (self.upscale(x) * 255).to(dtype=__import__("torch").int64)


SUBMISSION = Submission(name="wrong_dtype", team="hostile", model=Net, requires_weights=False)
