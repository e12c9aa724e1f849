import torch.nn.functional as F
from _common import Base, declare


class Net(Base):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2)  # x2 instead of x4


SUBMISSION = declare("wrong_shape", Net)
