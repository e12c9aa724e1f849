"""Caches its output per input size: warm-up and every timed repeat of an image cost nothing."""

from _common import Honest

from ntire_bench.plugins import Submission


class Net(Honest):
    def __init__(self):
        super().__init__()
        self.cache = {}

    def forward(self, x):
        key = tuple(x.shape)
        if key not in self.cache:
            self.cache[key] = super().forward(x)
        return self.cache[key].clone()


SUBMISSION = Submission(name="memoizes", team="hostile", model=Net, requires_weights=False)
