"""Complexity counts: hand-computed FLOPs/activations on tiny nets, and the official RLFN figures."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.results.records import ComplexityResult, from_plain, to_plain
from ntire_bench.complexity.counting import (count_activations, count_flops, count_params, measure_complexity, peak_memory_mb)

H, W = 16, 20  # input 1x3x16x20 for the tiny nets
HW = H * W


class Upsample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), size=(2 * H, 2 * W), mode="bilinear", align_corners=False)


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.unused = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.relu(self.conv(x)))


def test_plain_conv() -> None:
    net = nn.Conv2d(3, 8, 3, padding=1)
    flops, unsupported = count_flops(net, (H, W))
    # one multiply-add per (output element x input channel x kernel tap); bias not counted
    assert flops == (8 * HW) * (3 * 3 * 3)
    assert unsupported == {}
    assert count_activations(net, (H, W)) == (8 * HW, 1)
    assert count_params(net) == 8 * 3 * 3 * 3 + 8


def test_depthwise_conv() -> None:
    net = nn.Sequential(nn.Conv2d(3, 6, 1), nn.Conv2d(6, 6, 3, padding=1, groups=6))
    flops, _ = count_flops(net, (H, W))
    pointwise = (6 * HW) * 3  # 1x1, 3 input channels
    depthwise = (6 * HW) * (1 * 3 * 3)  # groups=C: each output sees 1 input channel
    assert flops == pointwise + depthwise
    assert count_activations(net, (H, W)) == (6 * HW + 6 * HW, 2)
    assert count_params(net) == (6 * 3 + 6) + (6 * 1 * 9 + 6)


def test_strided_conv() -> None:
    net = nn.Conv2d(3, 4, 3, stride=2)
    ho, wo = (H - 3) // 2 + 1, (W - 3) // 2 + 1  # 7 x 9, no padding
    flops, _ = count_flops(net, (H, W))
    assert flops == (4 * ho * wo) * (3 * 3 * 3)
    assert count_activations(net, (H, W)) == (4 * ho * wo, 1)


def test_bilinear_upsampling_counts_four_per_output_element() -> None:
    flops, unsupported = count_flops(Upsample(), (H, W))
    conv = (2 * HW) * 3
    upsample = 4 * (2 * (2 * H) * (2 * W))  # 4 per output element, output 1x2x32x40
    assert flops == conv + upsample
    assert "aten::upsample_bilinear2d" not in unsupported
    assert count_activations(Upsample(), (H, W)) == (2 * HW, 1)  # only Conv2d outputs count


def test_pixel_shuffle_counts_zero() -> None:
    net = nn.Sequential(nn.Conv2d(3, 12, 1), nn.PixelShuffle(2))
    flops, unsupported = count_flops(net, (H, W))
    assert flops == (12 * HW) * 3  # the conv alone
    assert unsupported == {"aten::pixel_shuffle": 1}
    assert count_activations(net, (H, W)) == (12 * HW, 1)


def test_reused_conv_counts_every_call_in_activations_and_num_conv() -> None:
    # The official counter adds one to num_conv per call (utils/model_summary.py), not per module.
    net = Reused()
    flops, unsupported = count_flops(net, (H, W))
    assert flops == 2 * (3 * HW) * (3 * 3 * 3)
    assert unsupported == {}  # fvcore ignores relu outright
    assert count_activations(net, (H, W)) == (2 * 3 * HW, 2)  # two calls; `unused` never ran
    assert measure_complexity(net, (H, W)).num_conv == 2  # the same during fvcore's trace
    assert count_params(net) == (3 * 3 * 9 + 3) + (3 * 3 + 3)


def test_transposed_convs_count_as_the_official_counter_hooks_them() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ConvTranspose2d(4, 3, 4, stride=4))
    assert count_activations(net, (H, W)) == (4 * HW + 3 * 16 * HW, 2)


def test_num_conv_and_activations_match_the_official_counter(shared_dir) -> None:
    import importlib.util

    path = shared_dir / "ntire2024_esr" / "utils" / "model_summary.py"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    spec = importlib.util.spec_from_file_location("official_model_summary", path)
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    for net in (Reused(), nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ConvTranspose2d(4, 3, 4, stride=4))):
        assert official.get_model_activation(net, (3, H, W)) == count_activations(net, (H, W))


def test_hooks_removed_and_mode_restored() -> None:
    net = Reused()
    net.train()
    count_activations(net, (H, W))
    count_flops(net, (H, W))
    assert all(not m._forward_hooks for m in net.modules())
    assert net.training


def test_measure_complexity_gives_the_results_record() -> None:
    c = measure_complexity(nn.Sequential(nn.Conv2d(3, 12, 1), nn.PixelShuffle(2)), input_size=(H, W))
    assert isinstance(c, ComplexityResult)
    assert (c.params, c.flops, c.activations, c.num_conv) == (48, 12 * HW * 3, 12 * HW, 1)
    assert c.input_size == [H, W] and c.peak_memory_mb is None
    plain = to_plain(c)
    assert plain["input_size"] == [H, W] and plain["unsupported_ops"] == {"aten::pixel_shuffle": 1}
    assert from_plain(ComplexityResult, json.loads(json.dumps(plain))) == c  # what the parent reads back


def test_peak_memory_is_none_on_cpu() -> None:
    assert peak_memory_mb(nn.Conv2d(3, 3, 1), (H, W), "cpu") is None


def test_bicubic_has_no_parameters() -> None:
    from ntire_bench.archs.bicubic import Bicubic

    model = Bicubic()
    assert count_params(model) == 0
    assert count_activations(model, (H, W)) == (0, 0)


def test_rlfn_matches_official_figures(set5_reference: dict) -> None:
    rlfn = pytest.importorskip("ntire_bench.archs.rlfn")
    ref = set5_reference["models"]["rlfn"]
    assert (ref["params"], ref["flops"], ref["activations"], ref["num_conv"]) == (317218, 19674859520, 80045184, 39)
    c = measure_complexity(rlfn.RLFN())
    assert c.params == 317218
    assert c.flops == 19674859520
    assert c.activations == 80045184
    assert c.num_conv == 39


@pytest.mark.gpu
def test_peak_memory_on_cuda() -> None:
    net = nn.Conv2d(3, 64, 3, padding=1).cuda()
    mb = peak_memory_mb(net, (256, 256), "cuda")
    # at least the 1x64x256x256 float32 output
    assert mb is not None and mb >= 64 * 256 * 256 * 4 / 2**20
    c = measure_complexity(net, (64, 64), "cuda")
    assert c.peak_memory_mb is not None and c.flops == 64 * 64 * 64 * 27
