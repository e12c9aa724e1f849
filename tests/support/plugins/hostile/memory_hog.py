import torch
from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        hoard = [torch.ones(256, 1024, 1024, dtype=torch.uint8) for _ in range(64)]  # 16 GiB, touched
        return self.upscale(x) + 0 * len(hoard)


SUBMISSION = Submission(name="memory_hog", team="hostile", model=Net, requires_weights=False)
