"""Counting a model from its exported graph alone (complexity/graph.py, rules.py, clean.py): every count
hand-computed on small nets, equal to the live model's count, and the audited figures the rules miss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.complexity.clean import count_exported, export_trace, load_exported, run_exported
from ntire_bench.complexity.counting import count_flops_2023, measure_complexity
from ntire_bench.complexity.graph import GraphError
from ntire_bench.complexity.rules import FVCORE, NTIRE2023
from ntire_bench.worker.counting import layer_kinds

H, W = 16, 20
HW = H * W
CPU = torch.device("cpu")


def graph_counts(net: nn.Module, tmp_path: Path, size: tuple[int, int] = (H, W)) -> dict:
    """Export ``net`` as the worker does and count the file as the fresh worker does."""
    net.eval()
    warnings = export_trace(net, torch.rand(1, 3, *size), tmp_path / "graph.pt").warnings
    counts = count_exported(load_exported(tmp_path / "graph.pt", CPU), size, CPU, layer_kinds(net))
    return {**counts, "warnings": warnings}


class ConvReLUConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.LeakyReLU(0.05)
        self.conv2 = nn.Conv2d(8, 48, 1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv2(self.act(self.conv1(x))))


def test_a_plain_network_counts_by_hand_and_as_the_live_model(tmp_path: Path) -> None:
    net = ConvReLUConv()
    counts = graph_counts(net, tmp_path)
    conv1, conv2 = 8 * HW * 3 * 9, 48 * HW * 8
    assert counts["flops"][FVCORE] == conv1 + conv2  # fvcore: convolutions only, no bias, no activation
    assert counts["flops"][NTIRE2023] == conv1 + 8 * HW + conv2  # the 2023 hooks add the LeakyReLU's output
    assert (counts["activations"], counts["num_conv"]) == (8 * HW + 48 * HW, 2)
    assert counts["params"] == (8 * 27 + 8) + (48 * 8 + 48)
    assert counts["unsupported_ops"] == {"aten::leaky_relu": 1, "aten::pixel_shuffle": 1}  # as fvcore reports them
    assert counts["skipped_flops"] == {}  # neither does multiply-adds
    assert (counts["weight_elements"], counts["uninitialised_output"]) == (0, False)
    live = measure_complexity(net, (H, W))
    assert (live.flops, live.activations, live.num_conv, live.params) == (
        counts["flops"][FVCORE], counts["activations"], counts["num_conv"], counts["params"])
    assert count_flops_2023(net, (H, W)) == counts["flops"][NTIRE2023]


class Reused(nn.Module):
    """One Conv2d called twice, a Linear over channels, an affine BatchNorm2d and a transposed conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)
        self.linear = nn.Linear(3, 6)
        self.up = nn.ConvTranspose2d(6, 3, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(torch.relu(self.conv(x))))
        y = self.linear(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.up(y)


def test_the_2023_rules_per_layer_type(tmp_path: Path) -> None:
    counts = graph_counts(Reused(), tmp_path)
    conv = (3 * 3 * 9) * 1 * HW  # weight elements x N x output H*W, per call
    batchnorm = 1 * 3 * HW * 2  # affine: twice N*C*H*W
    # The official rule multiplies dims 0 and 1 of the input by dim 1 of the output: on a channels-last
    # (1, H, W, C) tensor that is N * H * H, whatever the features.
    linear = 1 * H * H
    transposed = (6 * 3 * 16) * 1 * (4 * H * 4 * W)  # weight elements x N x output H*W
    assert counts["flops"][NTIRE2023] == 2 * conv + batchnorm + linear + transposed  # torch.relu is not a layer
    assert counts["num_conv"] == 3  # two calls of one Conv2d and the ConvTranspose2d
    assert counts["activations"] == 2 * 3 * HW + 3 * 16 * HW
    assert counts["flops"][NTIRE2023] == count_flops_2023(Reused(), (H, W))


class MyConv(nn.Conv2d):
    """A team's subclass: the official hooks match it with isinstance, a TorchScript module only by its name."""


def test_a_subclass_of_a_hooked_layer_counts_as_that_layer(tmp_path: Path) -> None:
    net = nn.Sequential(MyConv(3, 4, 3, padding=1))
    counts = graph_counts(net, tmp_path)
    assert (counts["activations"], counts["num_conv"]) == (4 * HW, 1)
    assert counts["flops"][NTIRE2023] == 4 * HW * 27
    assert layer_kinds(net) == {"0": "Conv2d"}


class HiddenWeights(nn.Module):
    """Weights kept as a buffer and as a tensor baked into the graph, called through the functional conv."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.randn(4, 3, 3, 3))
        self.baked = torch.randn(4, 4, 1, 1)  # a plain attribute: the tracer bakes it in as a constant
        self.norm = nn.BatchNorm2d(4)  # its running statistics are not weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.norm(F.conv2d(x, self.weight, padding=1)), self.baked)


def test_weights_outside_parameters_and_functional_convolutions_are_audited(tmp_path: Path) -> None:
    counts = graph_counts(HiddenWeights(), tmp_path)
    assert counts["params"] == 4 + 4  # the official rule: the BatchNorm's affine parameters only
    assert counts["weight_elements"] == 4 * 27 + 4 * 4
    assert counts["weight_buffers"] == ["weight", "1 tensor(s) baked into the graph"]
    assert (counts["activations"], counts["num_conv"]) == (0, 0)  # no Conv2d layer
    assert counts["all_conv_activations"] == 2 * 4 * HW
    # fvcore counts every aten convolution, and an affine batch norm as two per element
    assert counts["flops"][FVCORE] == 4 * HW * 27 + 4 * HW * 4 + 2 * 4 * HW


class Attention(nn.Module):
    """Self-attention over pixels with torch's fused kernel, which fvcore has no handle for."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(3, 12, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).flatten(2).transpose(1, 2).chunk(3, dim=-1)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return out.transpose(1, 2).reshape(1, 4, H, W)


def test_operators_fvcore_skips_are_measured_for_the_audited_figure(tmp_path: Path) -> None:
    counts = graph_counts(Attention(), tmp_path)
    assert counts["flops"][FVCORE] == 12 * HW * 3
    assert "aten::scaled_dot_product_attention" in counts["unsupported_ops"]
    # Q K^T and the weighted sum of V: HW x HW x 4 multiply-adds each
    assert counts["skipped_flops"] == {"aten::scaled_dot_product_attention": 2 * HW * HW * 4}


class WrittenBehindTheTracer(nn.Module):
    """An output buffer filled by numpy, which the tracer never sees (like an extension operator)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        out.numpy()[...] = x.numpy() * 2
        return out + 0


def test_an_output_written_by_an_invisible_operator_is_detected(tmp_path: Path) -> None:
    assert graph_counts(WrittenBehindTheTracer(), tmp_path)["uninitialised_output"] is True
    assert graph_counts(ConvReLUConv(), tmp_path)["uninitialised_output"] is False


class LayerNormFunction(torch.autograd.Function):
    """A custom autograd function, as NAFNet-style teams write LayerNorm (TorchScript cannot save it as is)."""

    @staticmethod
    def forward(ctx, x, weight, eps):  # type: ignore[override]
        ctx.eps = eps
        mu = x.mean(1, keepdim=True)
        y = (x - mu) / ((x - mu).pow(2).mean(1, keepdim=True) + eps).sqrt()
        ctx.save_for_backward(y, weight)
        return weight.view(1, -1, 1, 1) * y

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        raise NotImplementedError


class WithFunction(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(LayerNormFunction.apply(x, self.weight, 1e-6))


def test_custom_autograd_functions_are_traced_through_and_run_as_the_model(tmp_path: Path) -> None:
    net = WithFunction().eval()
    counts = graph_counts(net, tmp_path)
    assert counts["flops"][FVCORE] == 3 * HW * 3 and counts["params"] == 3 + 12
    x = torch.rand(1, 3, 24, 28)  # another size: the graph generalises
    (out,) = run_exported(load_exported(tmp_path / "graph.pt", CPU), [x])
    torch.testing.assert_close(out, net(x), rtol=0, atol=1e-6)
    assert torch.autograd.Function.apply.__func__.__qualname__ == "Function.apply"  # restored after the trace


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if float(x.mean()) > 0.5 else x


def test_a_data_dependent_branch_is_reported_by_the_export(tmp_path: Path) -> None:
    warnings = graph_counts(DataDependent(), tmp_path)["warnings"]
    assert warnings and "Converting a tensor to a Python" in warnings[0]
    assert graph_counts(ConvReLUConv(), tmp_path)["warnings"] == []


def test_a_model_that_routes_by_value_is_traced_and_counted_on_each_official_input(tmp_path: Path) -> None:
    """A net that convolves all but dark inputs: torch.rand (fvcore's input) takes the convolution, the zeros of
    the hooked counters do not. The worker exports a trace on each; counted together they give each rule its own
    path, as the live model does."""
    from ntire_bench.worker.counting import claim_complexity

    class BrightOnly(DataDependent):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) if float(x.mean()) > 0.25 else x

    net = BrightOnly().eval()
    claim = claim_complexity(net, (H, W), CPU, tmp_path)
    assert (claim["graph"], claim["zeros_graph"]) == ("graph.pt", "zeros_graph.pt")
    counts = count_exported(load_exported(tmp_path / "graph.pt", CPU), (H, W), CPU, claim["layer_kinds"],
                            on_zeros=load_exported(tmp_path / "zeros_graph.pt", CPU))
    assert counts["flops"][FVCORE] == 3 * 3 * HW  # the convolution, on torch.rand
    assert (counts["activations"], counts["num_conv"]) == (0, 0)  # none, on the zeros
    assert counts["input_dependent"] == {"activations": 3 * HW, "num_conv": 1}
    live = measure_complexity(net, (H, W))
    assert (live.flops, live.activations, live.num_conv, live.input_dependent) == (
        counts["flops"][FVCORE], 0, 0, counts["input_dependent"])
    plain = claim_complexity(ConvReLUConv().eval(), (H, W), CPU, tmp_path / "plain")
    assert plain["zeros_graph"] is None and not (tmp_path / "plain" / "zeros_graph.pt").exists()


def test_a_file_that_is_not_a_graph_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "graph.pt").write_bytes(b"not a TorchScript archive")
    with pytest.raises(GraphError, match="^the exported graph cannot be loaded without the submission's code"):
        load_exported(tmp_path / "graph.pt", CPU)


@pytest.mark.parametrize("name", ["RLFN", "SPAN"])
def test_the_reference_networks_count_as_the_live_model(name: str, tmp_path: Path) -> None:
    import importlib

    net = getattr(importlib.import_module(f"ntire_bench.archs.{name.lower()}"), name)().eval()
    counts = graph_counts(net, tmp_path, size=(64, 64))
    live = measure_complexity(net, (64, 64))
    assert (counts["flops"][FVCORE], counts["activations"], counts["num_conv"], counts["params"]) == (
        live.flops, live.activations, live.num_conv, live.params)
    assert counts["unsupported_ops"] == live.unsupported_ops


def test_a_convolution_fvcore_has_no_handle_for_is_audited(tmp_path: Path) -> None:
    """``padding="same"`` traces as ``aten::_convolution_mode``, which fvcore skips (0 FLOPs, listed as
    unsupported); the audited figure measures its multiply-adds (NTIRE 2024 teams 28 and 41 use it)."""

    class Same(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding="same")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    counts = graph_counts(Same(), tmp_path)
    assert counts["flops"][FVCORE] == 0 and counts["unsupported_ops"] == {"aten::_convolution_mode": 1}
    assert counts["skipped_flops"] == {"aten::_convolution_mode": 8 * 27 * HW}
    assert counts["flops"][NTIRE2023] == 8 * 27 * HW  # the 2023 hooks count the layer


class RowsByValue(nn.Module):
    """Convolves only the rows whose first pixel is dark: the conv's input shape depends on the input's values."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[:, :, x[0, 0, :, 0] < 0.5, :])


def test_a_graph_whose_shapes_depend_on_values_is_counted_on_the_zeros_too(tmp_path: Path) -> None:
    from ntire_bench.complexity.graph import run_traced, shapes_depend_on_values

    plain = ConvReLUConv().eval()
    export_trace(plain, torch.rand(1, 3, H, W), tmp_path / "plain.pt")
    assert not shapes_depend_on_values(run_traced(load_exported(tmp_path / "plain.pt", CPU), [torch.rand(1, 3, H, W)]))
    torch.manual_seed(0)  # traced on rand: about half the rows are convolved
    counts = graph_counts(RowsByValue(), tmp_path)
    # the hooked counters' input is zeros: every row is dark, so every row counts, whatever rand gave
    assert (counts["activations"], counts["num_conv"]) == (4 * HW, 1)
    assert 0 < counts["input_dependent"]["activations"] < 4 * HW
    assert measure_complexity(RowsByValue().eval(), (H, W)).activations == 4 * HW


class WidthByValue(nn.Module):
    """Convolves a band whose width is read back from the input's values: a number, not a shape, in the trace."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # all of it on zeros, about half on torch.rand; traced as aten::Int of a tensor, with no tracer warning
        width = ((1.0 - x.mean()) * x.shape[-1]).long()
        return self.conv(x[..., :width])


def test_a_slice_bound_read_back_from_values_is_counted_on_the_zeros_too(tmp_path: Path) -> None:
    counts = graph_counts(WidthByValue(), tmp_path)
    assert counts["activations"] == 4 * HW  # the official zeros: the whole width
    assert 0 < counts["input_dependent"]["activations"] < 4 * HW
    assert graph_counts(ConvReLUConv(), tmp_path)["input_dependent"] == {}


def test_the_run_keeps_each_layer_call_s_shapes_not_its_tensors(tmp_path: Path) -> None:
    from ntire_bench.complexity.graph import run_traced

    net = ConvReLUConv().eval()
    export_trace(net, torch.rand(1, 3, H, W), tmp_path / "graph.pt")
    run = run_traced(load_exported(tmp_path / "graph.pt", CPU), [torch.rand(1, 3, H, W)])
    shapes = {call.name: (tuple(call.inputs[0].shape), tuple(call.output.shape)) for call in run.calls}
    assert shapes == {"conv1": ((1, 3, H, W), (1, 8, H, W)), "act": ((1, 8, H, W), (1, 8, H, W)),
                      "conv2": ((1, 8, H, W), (1, 48, H, W)), "shuffle": ((1, 48, H, W), (1, 3, 4 * H, 4 * W))}
    # a layer's output is not held to the end of the run (at 256x256 they came to hundreds of MB)
    assert all(call.output.is_meta and call.inputs[0].is_meta for call in run.calls)
    assert not run.outputs[0].is_meta  # what the graph computes is real: it is compared with the model's SR
