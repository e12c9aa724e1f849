"""The worker: the only process that runs submission code (``python -m ntire_bench.worker``).

A ``Session`` loads one submission and answers the parent's requests (protocol.py): load
and count complexity, then per image a quality pass and warm-up (``image``), and a timed
block (``time``) whose repeats each see the LR image plus a little noise the parent chose
at that moment, reporting the samples and a few output values per repeat for the parent to
check (docs/isolation.md). LR pixels arrive, and SR pixels leave, as ``.npy`` files in the
worker's private directory; no HR path or pixel ever reaches this process.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ntire_bench.timing import runtime  # binds the clocks before any plugin code runs
from ntire_bench.timing.adaptive import AdaptiveSampler, WarmupDetector  # imported here, never inside a timed block
from ntire_bench.plugins.declaration import PluginError, Submission, SubmissionInfo
from ntire_bench.util.paths import PACKAGE_DIR
from ntire_bench.util.text import one_line
from ntire_bench.worker.protocol import Request, WorkerFailure, encode_reply
from ntire_bench.worker.forward import ModelCall, check_output, model_input, super_resolve

def guarded(what: str, fn, roots: list[Path] | None = None):
    """Call ``fn``, turning any exception into a one-line WorkerFailure."""
    from ntire_bench.worker.loading import explain_exception

    try:
        return fn()
    except WorkerFailure:
        raise
    except PluginError as exc:
        raise WorkerFailure(str(exc)) from exc
    except MemoryError as exc:
        raise WorkerFailure(f"out of memory while {what}: {one_line(exc)}") from exc
    except torch.cuda.OutOfMemoryError as exc:
        raise WorkerFailure(f"out of GPU memory while {what}") from exc
    except Exception as exc:
        text = explain_exception(exc, roots or [])
        if "can't allocate memory" in text or "out of memory" in text.lower():
            raise WorkerFailure(f"out of memory while {what}: {text}") from exc
        raise WorkerFailure(f"{what} raised {text}") from exc


@dataclass
class _Image:
    """The image being timed: its 0..255 pixels, the quality pass's output, and the timed-input buffer."""

    base255: torch.Tensor  # (1, 3, H, W) float, 0..255
    work255: torch.Tensor  # the same shape: base plus this repeat's noise
    reference: torch.Tensor  # the quality pass's output (cropped to the SR size)
    height: int
    width: int
    warmup: Any = None  # adaptive mode: the warm-up detector, fed the quality pass, that the timed block goes on feeding


@dataclass
class Session:
    """A loaded submission, ready to super-resolve LR images with timing."""

    submission: Submission | None = None
    module: ModelCall | None = None  # what is timed: the model, through the team's inference wrapper if any
    bare_model: ModelCall | None = None  # the model called directly, as the official counters call it
    settings: runtime.TimingSettings | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    roots: list[Path] = field(default_factory=list)
    noise: torch.Tensor | None = None
    target: float | None = None  # the dataset's adaptive target per image (the parent's), else the settings'
    image_state: _Image | None = None
    kept: torch.Tensor | None = None  # CUDA: the buffer the last timed block's outputs were copied into
    kept_outputs: list[torch.Tensor] = field(default_factory=list)  # the last block's outputs, for its challenge
    peak_memory_mb: float | None = None  # the dataset's peak over the forward passes, the kept outputs excluded

    # ------------------------------------------------------------------- load
    def load(self, config: dict[str, Any]) -> dict[str, Any]:
        """Import the submission, build the model, load weights, deploy, and count complexity."""
        from ntire_bench.worker.counting import claim_complexity
        from ntire_bench.worker.loading import LoadNotes, guard_torch_load, install_cpu_cuda_fallback
        from ntire_bench.worker.build import build_model, load_declared_submission

        self.device = torch.device(config["device"])
        if config.get("threads"):
            torch.set_num_threads(config["threads"])
        torch.backends.cudnn.benchmark = bool(config.get("cudnn_benchmark"))
        self.settings = runtime.TimingSettings(**config["timing"])
        notes = LoadNotes()
        expected = SubmissionInfo.from_dict(config["info"], "the parent's declaration")
        guard_torch_load(expected.trust_pickle, notes)
        if self.device.type == "cpu":
            install_cpu_cuda_fallback(notes)
        self.roots = [Path(expected.code_root)] if expected.code_root else []
        started = runtime.perf_ms()
        submission = guarded("importing the submission", lambda: load_declared_submission(config), self.roots)
        found = submission.info(expected.kind)
        comparable = {k: v for k, v in found.to_dict().items() if k not in ("code_root", "kind")}
        declared = {k: v for k, v in expected.to_dict().items() if k not in ("code_root", "kind")}
        if comparable != declared:
            diff = next(k for k in declared if declared[k] != comparable.get(k))
            raise WorkerFailure(f"the declaration changed between discovery and the run ({diff}: "
                                f"{declared[diff]!r} then {comparable.get(diff)!r}); declare it statically")
        self.submission = submission
        model = guarded("building the model", lambda: build_model(submission, config.get("checkpoint"),
                                                                  self.device, notes), self.roots)
        self.module = ModelCall(model, submission.forward).to(self.device).eval()
        # The official counters call the bare model, never the team's inference wrapper (tiles, say).
        self.bare_model = ModelCall(model).eval()
        loaded_ms = runtime.perf_ms()
        complexity = None
        if config.get("count_complexity", True):
            size = tuple(config.get("complexity_size", (256, 256)))
            complexity = guarded("counting complexity", lambda: claim_complexity(self.bare_model, size, self.device,
                                                                                 Path(config["workdir"])), self.roots)
        return {
            "team": submission.team, "data_range": submission.data_range, "reference": submission.reference,
            "weights_loaded": bool(config.get("checkpoint")) or submission.load_weights is not None,
            "complexity": complexity, "num_threads": torch.get_num_threads(),
            "warnings": notes.warnings, "opt_ins": notes.opt_ins, "dependencies": local_modules(),
            # by the worker's clock, for the run's stage breakdown only (never scored)
            "durations": {"load": (loaded_ms - started) / 1e3, "complexity": (runtime.perf_ms() - loaded_ms) / 1e3},
        }

    # --------------------------------------------------------------- datasets
    def begin_dataset(self, args: dict[str, Any]) -> dict[str, Any]:
        """Load this dataset's noise buffer, take its adaptive target per image, reset the peak-memory counter."""
        self.target = float(args["target"]) if args.get("target") else None
        noise = np.load(args["noise"], allow_pickle=False)
        self.noise = torch.from_numpy(noise.astype(np.float32)).to(self.device)
        self.peak_memory_mb = None
        return {}

    def end_dataset(self) -> dict[str, Any]:
        """The peak memory of the dataset's forward passes (CUDA only)."""
        self.image_state = None
        return {"result": {"peak_memory_mb": self.peak_memory_mb}}

    def _start_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def _record_peak(self) -> None:
        """Fold the peak since ``_start_peak`` into the dataset's, less the outputs kept for challenges (they stay
        allocated across images but the official measurement, which keeps none, never holds them)."""
        if self.device.type != "cuda":
            return
        torch.cuda.synchronize(self.device)
        kept = self.kept.numel() * self.kept.element_size() if self.kept is not None else 0
        peak = (torch.cuda.max_memory_allocated(self.device) - kept) / 2**20
        self.peak_memory_mb = peak if self.peak_memory_mb is None else max(self.peak_memory_mb, peak)

    # ------------------------------------------------------------------ images
    def image(self, args: dict[str, Any]) -> dict[str, Any]:
        """Quality pass (its uint8 output saved for the parent), warm-up, and optionally a second pass whose largest
        difference from the first, in grey levels, is reported as ``spread`` (a measurement: the parent decides).
        ``warm_up=False``: no warm-up (an image that is only recomputed, never timed)."""
        from ntire_bench.metrics.quality import quantize

        assert self.submission is not None and self.settings is not None
        lr = np.load(args["input"], allow_pickle=False)
        if lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3:
            raise WorkerFailure(f"internal: LR must be HxWx3 uint8, got {lr.dtype} {lr.shape}")
        height, width = lr.shape[:2]
        scale = self.submission.scale
        base = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].to(self.device).float().contiguous()
        expected = (1, 3, height * scale, width * scale)
        self._start_peak()
        started = runtime.perf_ms()
        with torch.inference_mode():
            out = guarded("forward", lambda: super_resolve(self.submission, self.module, base), self.roots)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        first_ms = runtime.perf_ms() - started
        check_output(out, expected)
        sr = quantize(out[0], self.submission.data_range)
        spread = None
        if args.get("check_determinism"):
            with torch.inference_mode():
                again = guarded("forward", lambda: super_resolve(self.submission, self.module, base), self.roots)
            check_output(again, expected)
            spread = int((sr.int() - quantize(again[0], self.submission.data_range).int()).abs().max())
        if args.get("output"):
            np.save(args["output"], sr.cpu().numpy(), allow_pickle=False)
        self.image_state = _Image(base, torch.empty_like(base), out, height, width)
        if args.get("warm_up", True) is False:
            self._record_peak()
            return {"warmup": 0, "warmup_ms": [], "spread": spread}
        if self.settings.mode == "adaptive" and self.settings.warmup >= 1:
            # Adaptive warm-up is timed and checked as the first repeats of the block (runtime.time_repeats): the
            # passes that show the model is warm are its first samples, not passes run for nothing.
            self.image_state.warmup = WarmupDetector(min_passes=2, max_passes=self.settings.warmup + 1, window=2)
            self.image_state.warmup.add(first_ms)
            self._record_peak()
            return {"warmup": 0, "warmup_ms": [], "spread": spread}
        x = model_input(base, self.submission.data_range, self.submission.pad_to_multiple)
        durations = guarded("warm-up", lambda: runtime.run_warmup(lambda: self.module(x), self.settings),
                            self.roots)
        self._record_peak()
        return {"warmup": len(durations), "warmup_ms": durations, "spread": spread}

    def time(self, args: dict[str, Any]) -> dict[str, Any]:
        """Timed repeats of the current image; repeat k's input is the image plus the noise at ``offsets[k]``.

        Nothing about what will be checked is known here: each repeat's full output is kept for the ``challenge``
        that follows. On CUDA it is copied, outside the timed region, into a buffer allocated before the block (a
        device copy is cheap, and the timed forwards then allocate as the official ones do); on CPU the output
        itself is kept, since copying it costs a fast model as much as a quarter of its forward; memory the
        model hands back again (its own output buffer) is copied instead, as on CUDA.
        """
        state, settings = self.image_state, self.settings
        if state is None or settings is None or self.noise is None:
            raise WorkerFailure("internal: 'time' before 'image' or 'begin_dataset'")
        offsets = [int(o) for o in args["offsets"]]
        # once its detector has decided (the first block of the image did), a block timed again warms up no more
        detector = None if state.warmup is None or state.warmup.done else state.warmup
        warmup = settings.warmup if detector is not None else 0
        cap = min(settings.repeats, len(offsets) - warmup)
        if cap < 1:
            raise WorkerFailure(f"internal: {len(offsets)} offsets for a block of up to {warmup} warm-up repeats")
        numel = state.base255.numel()
        if any(o < 0 or o + numel > self.noise.numel() for o in offsets):
            raise WorkerFailure("internal: noise offset out of range")
        copied = self._kept_outputs(cap + warmup, state.reference.shape[1:]) if self.device.type == "cuda" else None
        self.kept_outputs = []
        held = {state.reference.untyped_storage().data_ptr()}  # storage already kept: a model's own buffer, reused
        rows, cols = state.reference.shape[-2:]
        holder: list[torch.Tensor] = []

        def before(k: int) -> None:
            torch.add(state.base255, self.noise[offsets[k]: offsets[k] + numel].view_as(state.base255),
                      out=state.work255)
            state.work255.clamp_(0.0, 255.0)
            holder[:] = [model_input(state.work255, self.submission.data_range, self.submission.pad_to_multiple)]

        def after(k: int, output: torch.Tensor) -> None:
            if copied is not None:
                copied[k].copy_(output[0, :, :rows, :cols])
                self.kept_outputs.append(copied[k])
            elif type(output) is torch.Tensor and output.dtype == torch.float32 and \
                    output.untyped_storage().data_ptr() not in held:
                held.add(output.untyped_storage().data_ptr())
                self.kept_outputs.append(output[0, :, :rows, :cols])
            else:  # a subclass, another dtype, or memory the model returns again: materialised now, outside the timed region
                self.kept_outputs.append(torch.empty(state.reference.shape[1:], dtype=torch.float32).copy_(
                    output[0, :, :rows, :cols]))

        run_settings = settings if cap == settings.repeats else runtime.TimingSettings(
            **{**settings.to_dict(), "repeats": cap,
               "mode": settings.mode if cap >= settings.min_repeats else "fixed"})
        durations, stop_reason, leading = guarded(
            "forward", lambda: runtime.time_repeats(
                lambda: self.module(holder[0]), run_settings, before, after,
                lambda: AdaptiveSampler(target=self.target or settings.target, confidence=settings.confidence,
                                        min_samples=settings.min_repeats, max_samples=cap), detector),
            self.roots)
        del self.kept_outputs[len(durations):]
        self._record_peak()  # adaptive warm-up ran here, in the block
        return {"samples": durations, "leading": leading, "stop_reason": stop_reason,
                "clocks_replaced": runtime.clocks_replaced(), "num_threads": torch.get_num_threads()}

    def _kept_outputs(self, count: int, shape: torch.Size) -> torch.Tensor:
        """Room for ``count`` outputs of ``shape``, allocated before the timed block and reused between images."""
        needed = (count, *shape)
        if self.kept is None or self.kept.shape[0] < count or self.kept.shape[1:] != shape:
            self.kept = None  # free the old buffer before the new one is allocated
            self.kept = torch.empty(needed, dtype=torch.float32, device=self.device)
        return self.kept[:count]

    def challenge(self, args: dict[str, Any]) -> dict[str, Any]:
        """The last block's outputs (none when no block ran since ``image``) and the quality pass's output, at
        the positions the parent chose after the block."""
        state = self.image_state
        if state is None:
            raise WorkerFailure("internal: 'challenge' before 'image'")
        probes = torch.tensor(args["probes"], dtype=torch.long, device=self.device).reshape(-1, 3)
        channels, rows, cols = probes[:, 0], probes[:, 1], probes[:, 2]
        outputs = (torch.stack([kept[channels, rows, cols] for kept in self.kept_outputs]) if self.kept_outputs
                   else torch.empty(0))
        reference = state.reference[0, channels, rows, cols].float()
        self.kept_outputs = []  # each block is answered once
        return {"outputs": outputs.cpu().tolist(), "reference": reference.cpu().tolist()}

    def bare(self, args: dict[str, Any]) -> dict[str, Any]:
        """The bare model's SR image (uint8, saved to ``output``) of the LR at ``input``: the model called directly,
        without the team's inference wrapper, as the official counters call it."""
        from ntire_bench.metrics.quality import quantize

        if self.bare_model is None or self.submission is None:
            raise WorkerFailure("internal: 'bare' before 'load'")
        lr = np.load(args["input"], allow_pickle=False)
        x255 = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].to(self.device).float()
        with torch.inference_mode():
            out = guarded("forward", lambda: super_resolve(self.submission, self.bare_model, x255),
                          self.roots)
        check_output(out, (1, 3, lr.shape[0] * self.submission.scale, lr.shape[1] * self.submission.scale))
        np.save(args["output"], quantize(out[0], self.submission.data_range).cpu().numpy(), allow_pickle=False)
        return {}

    def claim(self, args: dict[str, Any]) -> dict[str, Any]:
        """The loaded model's own count at ``size`` by the official method, in this process (worker/counting.py)."""
        from ntire_bench.worker.counting import own_count

        if self.bare_model is None:
            raise WorkerFailure("internal: 'claim' before 'load'")
        size = (int(args["size"][0]), int(args["size"][1]))
        return {"result": guarded("counting complexity", lambda: own_count(self.bare_model, size, self.device),
                                  self.roots)}

    def executed(self, args: dict[str, Any]) -> dict[str, Any]:
        """Multiply-adds torch's flop counter sees in one forward of the loaded model at ``size``."""
        from ntire_bench.worker.counting import executed_macs

        if self.bare_model is None:
            raise WorkerFailure("internal: 'executed' before 'load'")
        x = torch.rand(1, 3, *args["size"], device=self.device)
        return {"macs": guarded("counting complexity", lambda: executed_macs(self.bare_model, x), self.roots)}

    # --------------------------------------------------------------- discovery
    @staticmethod
    def discover(args: dict[str, Any]) -> dict[str, Any]:
        """Import a plugin and report its declarations as plain data (the parent validates them)."""
        from ntire_bench.worker.loading import import_entry_point, import_plugin_file

        source = args["source"]
        if source.startswith("entry-point:"):
            declared = import_entry_point(source.removeprefix("entry-point:"))
        else:
            declared = import_plugin_file(Path(source))
        return {"result": [s.info().to_dict() for s in declared]}


def local_modules() -> list[str]:
    """Source files of every imported module outside the standard library, site-packages and the harness."""
    import sysconfig

    excluded = {str(Path(p).resolve()) for p in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                                 sysconfig.get_paths()["platlib"])}
    harness = str(PACKAGE_DIR)
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        resolved = str(Path(path).resolve())
        if resolved.startswith(harness + os.sep) or any(resolved.startswith(root + os.sep) for root in excluded):
            continue
        if "site-packages" in resolved or "dist-packages" in resolved:
            continue
        found.add(resolved)
    return sorted(found)


# Requests a Session method of the same name answers from the request's arguments.
_SESSION_OPS = frozenset({"begin_dataset", "image", "time", "challenge", "bare", "executed", "claim"})


def serve(session: Session, request: Request) -> bytes:
    """Answer one request; every failure becomes an error reply, never an exception."""
    try:
        if request.op == "load":
            fields = {"result": session.load(request.args["config"])}
        elif request.op in _SESSION_OPS:
            fields = getattr(session, request.op)(request.args)
        elif request.op == "end_dataset":
            fields = session.end_dataset()
        elif request.op == "ping":  # started ahead of its work: answered once it has imported all it needs
            fields = {}
        elif request.op == "count":
            from ntire_bench.worker.counting import count_graph

            fields = count_graph(request.args)
        elif request.op == "discover":
            fields = Session.discover(request.args)
        else:
            return encode_reply(request, False, error=f"internal: unknown op {request.op!r}")
        return encode_reply(request, True, **fields)
    except (WorkerFailure, PluginError) as exc:
        return encode_reply(request, False, error=str(exc))
    except BaseException as exc:  # SystemExit from a plugin included: report, don't vanish
        return encode_reply(request, False, error=f"worker raised {one_line(exc)}")
