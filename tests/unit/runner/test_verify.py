"""Recomputing timed repeats in a fresh worker (runner/verify.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ntire_bench.runner.audit import choose_probes, noise_buffer
from ntire_bench.runner.context import Identity, RunConfig, worker_factory
from ntire_bench.runner.evaluation import make_context
from ntire_bench.runner.discovery import discover
from ntire_bench.runner.verify import VerifyCandidate, verify_repeats

from support.paths import PLUGINS


@pytest.fixture
def load_worker(tmp_path):
    """Loads tiny_net in-process with three fixed warm-up passes per ordinary image."""
    (entry,) = discover([PLUGINS / "good" / "tiny_net.py"], include_entry_points=False)
    ctx = make_context(RunConfig(out_dir=tmp_path, device="cpu", isolate=False, timing="fixed", warmup=3, repeats=2,
                                 threads=1, progress=False, log=lambda m: None), [])
    start = worker_factory(entry, Identity("key", {}, None, None), ctx)
    workers = []

    def load():
        worker, _ = start(False)
        workers.append(worker)
        return worker

    yield load
    for worker in workers:
        worker.close()


def _image(worker, lr: np.ndarray, **args):
    np.save(worker.tmp / "lr.npy", lr, allow_pickle=False)
    reply, _ = worker.request("image", input=str(worker.tmp / "lr.npy"), output=str(worker.tmp / "sr.npy"),
                              check_determinism=False, **args)
    return reply, np.load(worker.tmp / "sr.npy")


def test_recomputed_images_run_no_warm_up_and_match_what_the_timed_worker_gave(load_worker):
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    noise = noise_buffer(lr.size, rng)
    timed = load_worker()
    timed.request("begin_dataset", noise=str(_noise_file(timed, noise)))
    reply, sr = _image(timed, lr)
    assert reply["warmup"] == 3  # an ordinary image gets the fixed warm-up
    # a timed block after the warm-up: its second repeat saw the noise at offset 5; the challenge that follows it
    # gives that repeat's output at the probes, as the verifier is then told it
    timed.request("time", offsets=[0, 5])
    probes = choose_probes(sr, rng)
    outputs = timed.request("challenge", probes=probes)[0]["outputs"]
    candidate = VerifyCandidate("A", lr, 5, noise, probes, outputs[1])
    assert outputs[1] != outputs[0]  # the offset matters: the repeat is told apart from its neighbour

    fresh = load_worker()
    sent = []
    request = fresh.request

    def recording(op, **args):
        reply, ms = request(op, **args)
        if op == "image":
            sent.append((args.get("warm_up"), reply["warmup"]))
        return reply, ms

    fresh.request = recording
    assert verify_repeats(fresh, [candidate], scale=4, data_range=1.0) == 0.0
    assert sent == [(False, 0)]  # recomputed, never timed: no warm-up passes


def _noise_file(worker, noise: np.ndarray):
    path = worker.tmp / "noise.npy"
    np.save(path, noise, allow_pickle=False)
    return path
