"""Benchmarks, one subcommand each (`tools/benchmark.py`). Speed and memory targets live here,
never in timed tests.

    python tools/benchmark.py models [--variants ResNet-50 ResNeSt-50 ...] [--batch 8]
        [--size 224] [--device cpu|cuda] [--channels-last] [--bf16] [--fold-bn] [--deploy]
        [--deploy-compile] [--with-cp] [--again]
        [--out-dir docs/benchmarks]
    python tools/benchmark.py involution --channels 64 --size 56 --batch 8

models: every registered family at its base depth (default), and for each variant the same
architecture from timm and mmdet where they have it (the equivalence tests prove the match), all
with the same random weights distribution. Columns: params (backbone only, no classifier) and
GMACs per image (mmengine.analysis FlopAnalyzer), forward (eval, no grad) and forward+backward
(train mode, loss = mean of the last stage's output) throughput in img/s, each the median over
--repeats after --warmup; the implementations of a variant are timed round-robin (ours, theirs,
ours, ...) so drift of the machine hits all alike. Peak memory is measured in a fresh subprocess
per (implementation, mode), of the second call (steady state: the first also pages in library code
and JIT-compiles kernels, tens of MB that are the same for every model and are no step's memory):
CPU: peak RSS growth during the call (Linux /proc, the peak mark reset first, glibc told to return
every tensor's memory on free, see `in_child`); CUDA: growth of torch.cuda.max_memory_allocated.
Deploy rows: --fold-bn adds `ours+fold_bn` (mmresfamily.deploy.fold_batchnorm, forward only),
--deploy `ours+deploy` (deploy.optimize_for_inference: folded + its layout, forward only),
--deploy-compile `ours+deploy_compile` (the same, compiled by Inductor with frozen weights for the
benchmark's input shape before timing; forward only; GMACs counted on the uncompiled graph),
--onnxruntime `ours+onnxruntime` (the eager model exported to ONNX at the benchmark shape and run
by onnxruntime's CPU provider, forward only),
--with-cp `ours+with_cp` (activation checkpointing); --again adds `ours+again`, a second copy of
ours timed in the same round robin: its ratio to ours is the timing noise of the run (A/A).
Writes benchmark.{md,csv,png} into --out-dir: the Markdown has the machine, the command and a
ratio table (ours / theirs, > 1 means ours is faster or, for memory, < 1 means ours uses less),
then paired speed ratios: per round-robin round the ratio of the two times, their median and a
distribution-free ~95 % interval for it, and whether the interval lies above 1 (faster), below
(slower) or includes it (tie). On a shared machine a ratio of medians moves between runs;
pairing rounds cancels what the machine does between rounds. The CSV keeps every round.

involution: the per-location aggregation of involution (the generator is excluded: it is the
same for both), naive unfold formula vs the shift-and-add path used by the models, forward and
forward+backward; median time, the largest intermediate tensor (from the shapes), and the
measured peak extra memory as above. Outputs of both paths are compared.

A subcommand is a module with HELP, `add_arguments(parser)` and `run(args)`, listed in
`cli.SUBCOMMANDS`.
"""
from .cli import main

__all__ = ['main']
