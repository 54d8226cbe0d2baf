"""Does this machine's torch run framilab's models? Every preset, forward and backward, at every length.

    python -m framilab.cpucheck              # the sweep and one step of each stage (about 12 min on 2 cores)
    python -m framilab.cpucheck --quick      # every 7th length only (about 3 min)

A native crash inside a kernel (a segfault in oneDNN, see framilab/models/resnet.py) kills its process
without a Python traceback; an out-of-bounds write can also hang a kernel or leave silently wrong
gradients. So each group of cases runs in a child process with faulthandler on, the parent watches it
with a per-case timeout, names the case that died or hung, and starts a new child on the cases after it.
Gradients are compared with a float64 copy of the model (native kernels, not oneDNN) on batch 2.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .data import LOADERS, load_dataset
from .distillation import run_distillation
from .inversion import run_inversion
from .models import PRESETS, build_model
from .models.folding import fold_batchnorm
from .train import TrainConfig, train_classifier

# (mode, batch) as the stages run them. train: weight gradients, batch norm on batch statistics (teacher and
# student training). frozen: the batch-norm-folded eval copy with input gradients (the teacher in inversion,
# evaluation). eval: an unfolded model in eval mode with input and weight gradients (the student in the
# adversarial term takes the first); its convolutions run train's and frozen's kernels at the same shapes, so
# batch 2 suffices, and with batch norm's statistics fixed every gradient can be checked against float64.
COMBOS = (("train", 2), ("train", 64), ("frozen", 2), ("frozen", 64), ("eval", 2))
REFERENCE_BATCH = 2
LONGEST = 200
FULL_SWEEP_MELS = 64
QUICK_STEP = 7
N_CLASSES = 10
# A gradient is right when its distance from the float64 reference is under this share of the reference's
# norm. Rounding alone reached 0.5% here: a pre-activation within rounding of zero takes the other side of a
# ReLU in float32 and moves one unit's whole gradient (per element that is 2% of the largest value, so the
# norm is compared, not the worst element); the broken oneDNN kernel was off by factors. Train mode is not
# compared: batch norm on a batch's own statistics turns rounding into errors of a few per cent.
GRAD_TOLERANCE = 0.05
CASE_TIMEOUT_SECONDS = 120.0
MAX_FAILURES = 5


@dataclass(frozen=True)
class Group:
    """Cases that share a child process: one preset and mel count, every (mode, batch) and length."""

    preset: str
    n_mels: int
    lengths: tuple[int, ...]
    combos: tuple[tuple[str, int], ...] = COMBOS
    model_args: dict = field(default_factory=dict)

    def cases(self) -> list[tuple[str, int, int]]:
        return [(mode, batch, frames) for mode, batch in self.combos for frames in self.lengths]


@dataclass
class Report:
    """What happened to one group: the cases that failed (crash, hang, wrong or non-finite gradients)."""

    group: Group
    cases: int
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self) -> str:
        head = f"{self.group.preset} (n_mels {self.group.n_mels}, {self.cases} cases, {self.seconds:.0f} s)"
        return f"ok      {head}" if self.ok else f"FAILED  {head}:\n" + "\n".join(f"    {f}" for f in self.failures)


def shipped_mel_counts() -> tuple[int, ...]:
    """The mel counts of every data set's default front end."""
    modules = {sys.modules[loader.__module__] for loader in LOADERS.values()}
    return tuple(sorted({module.DEFAULT_CONFIG.n_mels for module in modules if hasattr(module, "DEFAULT_CONFIG")}))


def groups(quick: bool = False, presets: tuple[str, ...] | None = None) -> list[Group]:
    """Every preset x shipped mel count, lengths from the preset's minimum to LONGEST: every length at the demo's
    mel count (64: synthetic, ESC-50, UrbanSound8K), every QUICK_STEP-th at the others (40: FSDD, AudioMNIST),
    and every QUICK_STEP-th everywhere with `quick`."""
    out = []
    for preset in presets or tuple(PRESETS):
        for n_mels in shipped_mel_counts():
            step = 1 if n_mels == FULL_SWEEP_MELS and not quick else QUICK_STEP
            shortest = build_model(preset, n_mels, N_CLASSES).min_frames
            out.append(Group(preset, n_mels, tuple(range(shortest, LONGEST + 1, step))))
    return out


def _loss(out: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    logits, h, e = out
    return logits.logsumexp(1).mean() + h.square().mean() + e.square().mean()


def run_case(model: torch.nn.Module, reference: torch.nn.Module | None, batch: int, frames: int,
             n_mels: int) -> str | None:
    """One forward and backward pass as a stage makes it: weight gradients for a model in train mode (teacher
    and student training), input gradients through an eval-mode one (inversion, the adversarial term), and in
    eval mode weight gradients too where the weights are not frozen. Against `reference` (a float64 copy),
    every gradient is compared. None if it went right, else what was wrong."""
    x = torch.randn(batch, n_mels, frames, generator=torch.Generator().manual_seed(frames),
                    requires_grad=not model.training)
    model.zero_grad(set_to_none=True)
    _loss(model(x)).backward()
    grads = _gradients(model, x)
    bad = [name for name, g in grads.items() if not torch.isfinite(g).all()]
    if bad or not grads:
        return f"missing or non-finite gradients of {bad[:3]}"
    if reference is None:
        return None
    xr = x.detach().double().requires_grad_(x.requires_grad)
    reference.zero_grad(set_to_none=True)
    _loss(reference(xr)).backward()
    errors = {name: float((grads[name].double() - want).norm() / want.norm().clamp_min(1e-30))
              for name, want in _gradients(reference, xr).items()}
    worst = max(errors, key=errors.get)
    return None if errors[worst] < GRAD_TOLERANCE else f"wrong gradient of {worst} (relative error {errors[worst]:.2g})"


def _gradients(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    return {**({"input": x.grad} if x.grad is not None else {}), **grads}


def _models(preset: str, n_mels: int, mode: str, model_args: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The model as a stage uses it in `mode`, and a float64 copy of it to check input gradients against."""
    torch.manual_seed(0)
    model = build_model(preset, n_mels, N_CLASSES, **model_args)
    if mode == "frozen":
        model = fold_batchnorm(model)
    elif mode == "eval":
        model = model.eval()
    return model, copy.deepcopy(model).double()


def child(group: Group, skip: int) -> None:
    """Run the group's cases from `skip` on, printing 'start i' and 'done i [problem]' for the parent."""
    models: dict[str, tuple[torch.nn.Module, torch.nn.Module]] = {}
    for i, (mode, batch, frames) in enumerate(group.cases()):
        if i < skip:
            continue
        print(f"start {i}", flush=True)
        if mode not in models:
            models[mode] = _models(group.preset, group.n_mels, mode, group.model_args)
        model, reference = models[mode]
        check = reference if mode != "train" and batch == REFERENCE_BATCH else None
        problem = run_case(model, check, batch, frames, group.n_mels)
        print(f"done {i} {problem or ''}".rstrip(), flush=True)


def _describe(group: Group, i: int) -> str:
    mode, batch, frames = group.cases()[i]
    return f"{group.preset} {mode} batch {batch} x {group.n_mels} mels x {frames} frames"


def crash_excerpt(stderr: str, lines: int = 8) -> str:
    """The part of a dead process's stderr that says where it died: faulthandler's 'Fatal Python error' line and
    the top of the crashing thread's Python stack, else the last `lines` lines."""
    text = stderr.rstrip().splitlines()
    marks = [i for i, line in enumerate(text) if line.startswith(("Fatal Python error", "Current thread"))]
    shown = [text[i] for i in marks[:-1]] + text[marks[-1]:marks[-1] + lines] if marks else text[-lines:]
    return "\n".join(shown)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"died of {signal.Signals(-code).name}"
    return f"exited with code {code}"


def check_group(group: Group, case_timeout: float = CASE_TIMEOUT_SECONDS, command: list[str] | None = None) -> Report:
    """Run a group in child processes (`command`, default this module, with --child and --skip appended): a case
    that crashes or hangs is reported and a new child goes on with the cases after it."""
    total = len(group.cases())
    report, start, t0 = Report(group, total), 0, time.perf_counter()
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    while start < total and len(report.failures) < MAX_FAILURES:
        stderr = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty child cannot block on it
        proc = subprocess.Popen([*(command or [sys.executable, "-m", "framilab.cpucheck"]), "--child",
                                 json.dumps(asdict(group)), "--skip", str(start)], stdout=subprocess.PIPE,
                                stderr=stderr, text=True, env=env)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        current, done = start, start
        while True:
            try:
                line = lines.get(timeout=case_timeout)
            except queue.Empty:
                proc.kill()
                proc.wait()
                report.failures.append(f"{_describe(group, current)}: no result after {case_timeout:.0f} s (hung)")
                break
            if line is None:
                proc.wait()
                if proc.returncode != 0 or done < total:
                    stderr.seek(0)
                    excerpt = crash_excerpt(stderr.read()).replace("\n", "\n      ")
                    report.failures.append(f"{_describe(group, current)}: {_exit_reason(proc.returncode)}\n"
                                           f"      {excerpt}")
                break
            word, index, *problem = line.split(maxsplit=2)
            if word == "start":
                current = int(index)
            else:
                done = int(index) + 1
                if problem:
                    report.failures.append(f"{_describe(group, int(index))}: {problem[0]}")
        proc.stdout.close()
        stderr.close()
        start = total if done == total else current + 1
    report.seconds = time.perf_counter() - t0
    return report


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


STAGES = ("teacher", "inversion", "distillation")
STAGE_TIMEOUT_SECONDS = 600.0


def stage_step(stage: str, workdir: Path) -> None:
    """One short run of a stage as the chain makes it, at its default batch of 64, on the embedded `synthetic`
    data: teacher and student-from-real-data training (crops of 80 frames), FRAMI inversion through the folded
    teacher with a resnet-student, distillation on the pool (student crops of 80 of 101 frames, where
    resnet-student died on AVX-512 CPUs). Each stage reads what the one before wrote in `workdir`."""
    teacher = workdir / "teacher" / "teacher.pt"
    if stage == "teacher":
        train = load_dataset("synthetic", split="train", n_per_class=7, progress=False, cache_dir=None)
        test = load_dataset("synthetic", split="test", n_per_class=2, progress=False, cache_dir=None)
        config = TrainConfig(epochs=1, crop_frames=80)
        train_classifier("resnet-teacher", train, test, teacher.parent, config, progress=False, overwrite=True)
        train_classifier("resnet-student", train, test, teacher.parent, config, output_name="student_real",
                         progress=False, overwrite=True)
    elif stage == "inversion":
        run_inversion(teacher, workdir / "inversion", "frami", rounds=2, steps=1, student_steps=1, progress=False,
                      overwrite=True)
    else:
        run_distillation(teacher, workdir / "inversion", workdir / "distillation", rounds=1, steps_per_round=2,
                         steps=1, progress=False, overwrite=True)


def check_stage(stage: str, workdir: Path, timeout: float = STAGE_TIMEOUT_SECONDS) -> str | None:
    """Run `stage_step` in a child process; None if it finished, else how it died (and its last words)."""
    try:
        proc = subprocess.run([sys.executable, "-X", "faulthandler", "-m", "framilab.cpucheck", "--stage", stage,
                               "--dir", str(workdir)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"stage {stage}: no result after {timeout:.0f} s (hung)"
    if proc.returncode == 0:
        return None
    return f"stage {stage}: {_exit_reason(proc.returncode)}\n{crash_excerpt(proc.stderr, 15)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framilab.cpucheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every 7th length at 64 mels too")
    parser.add_argument("--preset", action="append", help="only this model preset (repeatable)")
    parser.add_argument("--no-stages", action="store_true", help="the models only, not one step of each stage")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--skip", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        child(Group(spec["preset"], spec["n_mels"], tuple(spec["lengths"]), tuple(map(tuple, spec["combos"])),
                    spec["model_args"]), args.skip)
        return 0
    if args.stage:
        stage_step(args.stage, args.dir)
        return 0
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads", flush=True)
    failed = 0
    for group in groups(args.quick, tuple(args.preset) if args.preset else None):
        report = check_group(group)
        print(report.line(), flush=True)
        failed += not report.ok
    if not args.no_stages:
        with tempfile.TemporaryDirectory() as workdir:
            for stage in STAGES:
                t0 = time.perf_counter()
                problem = check_stage(stage, Path(workdir))
                print(f"FAILED  {problem}" if problem else f"ok      stage {stage} ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
                failed += problem is not None
    print("every check passed" if not failed else f"{failed} check(s) failed: see above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
