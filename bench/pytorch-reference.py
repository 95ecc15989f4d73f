#!/usr/bin/env python3
"""PyTorch reference timings for the GPU machine, to run in the same job as fcm-opt's benchmarks so that every
comparison is a ratio from one run (BENCHMARKS.md, "Ratios from one run").

Times torchvision's mobilenet_v2, mobilenet_v3_large, mnasnet1_0, efficientnet_b0 and shufflenet_v2_x1_0 (random
weights: nothing is downloaded) at batch 1 and 32, 3x224x224, in every combination of
  mode      eager | graph (CUDA graph replay)
  dtype     fp32 | fp16 (model and input in half)
  layout    contiguous | channels_last
  io        gpu (input already on the GPU, output left there: PyTorch's usual figure)
            | host (input copied from a pageable host tensor, output copied back with .cpu(): as fcm-opt's run())
Each figure is the wall time of one inference up to torch.cuda.synchronize(), median (and p90) of --runs runs
after --warmup untimed ones and about 200 ms of heat (an idle GPU runs at a low clock). cuDNN autotuning is on
(cudnn.benchmark); TF32 stays at PyTorch's defaults, recorded in the output.

Prints one JSON object on stdout (progress on stderr). With --export DIR, also writes each model at each batch as
ONNX (DIR/<model>-b<batch>.onnx, eval mode, fp32) for `fcm-opt bench` on the same models.

  python3 bench/pytorch-reference.py [--models a,b] [--batches 1,32] [--runs 100] [--warmup 20]
      [--modes eager,graph] [--dtypes fp32,fp16] [--layouts contiguous,channels_last] [--io gpu,host]
      [--export DIR] > torch.json
"""
import argparse
import json
import statistics
import os
import sys
import time

import torch
import torchvision

MODELS = ['mobilenet_v2', 'mobilenet_v3_large', 'mnasnet1_0', 'efficientnet_b0', 'shufflenet_v2_x1_0']


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def p90(xs):
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.9 * len(s)))]


def build(name):
    return getattr(torchvision.models, name)(weights=None).eval().cuda()


def export(name, batch, path):
    """Writes the model as ONNX (TorchScript exporter where this PyTorch still has it, else its default); False if
    neither works (the timings go on)."""
    m = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(batch, 3, 224, 224)
    kw = dict(input_names=['input'], output_names=['output'], opset_version=17)
    errors = []
    for extra in (dict(dynamo=False), {}):
        try:
            torch.onnx.export(m, (x,), path, **kw, **extra)
            return True
        except Exception as e:  # noqa: BLE001 - any exporter failure: try the other, then report
            errors.append(f'{type(e).__name__}: {e}'.split('\n')[0])
    log(f'export of {name} b{batch} failed: {errors}')
    return False


def runner(model, batch, mode, dtype, layout, io):
    """A function running one inference (returns nothing), and what it holds."""
    fmt = torch.channels_last if layout == 'channels_last' else torch.contiguous_format
    dt = torch.float16 if dtype == 'fp16' else torch.float32
    m = model.to(dtype=dt, memory_format=fmt)
    x_gpu = torch.randn(batch, 3, 224, 224, device='cuda', dtype=dt).contiguous(memory_format=fmt)
    # Pageable host memory, as a Float32Array in Node is.
    x_host = torch.randn(batch, 3, 224, 224, dtype=dt).contiguous(memory_format=fmt)
    if mode == 'eager':
        def once():
            if io == 'host':
                x_gpu.copy_(x_host)
            y = m(x_gpu)
            if io == 'host':
                y.cpu()
        return once
    # CUDA graph: warm up on a side stream, capture, replay into static buffers.
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            m(x_gpu)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y_static = m(x_gpu)

    def once():
        if io == 'host':
            x_gpu.copy_(x_host)
        g.replay()
        if io == 'host':
            y_static.cpu()
    return once


def timed(once, runs, warmup):
    for _ in range(warmup):
        once()
    torch.cuda.synchronize()
    t_end = time.perf_counter() + 0.2
    while time.perf_counter() < t_end:
        once()
        torch.cuda.synchronize()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        once()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t0) * 1e3)
    return ts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default=','.join(MODELS))
    ap.add_argument('--batches', default='1,32')
    ap.add_argument('--runs', type=int, default=100)
    ap.add_argument('--warmup', type=int, default=20)
    ap.add_argument('--modes', default='eager,graph')
    ap.add_argument('--dtypes', default='fp32,fp16')
    ap.add_argument('--layouts', default='contiguous,channels_last')
    ap.add_argument('--io', default='gpu,host')
    ap.add_argument('--export', default=None, help='also write DIR/<model>-b<batch>.onnx')
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit('pytorch-reference.py: no CUDA device')
    torch.backends.cudnn.benchmark = True
    split = lambda v: [s for s in v.split(',') if s]
    batches = [int(b) for b in split(a.batches)]
    results = []
    with torch.inference_mode():
        for name in split(a.models):
            for batch in batches:
                if a.export:
                    os.makedirs(a.export, exist_ok=True)
                    path = f'{a.export}/{name}-b{batch}.onnx'
                    with torch.inference_mode(False):
                        if export(name, batch, path):
                            log(f'exported {path}')
                for mode in split(a.modes):
                    for dtype in split(a.dtypes):
                        for layout in split(a.layouts):
                            for io in split(a.io):
                                # A fresh model each time: .to() converts in place.
                                once = runner(build(name), batch, mode, dtype, layout, io)
                                ts = timed(once, a.runs, a.warmup)
                                med = statistics.median(ts)
                                r = dict(model=name, batch=batch, mode=mode, dtype=dtype, layout=layout, io=io,
                                         median_ms=med, p90_ms=p90(ts), images_per_s=batch / (med / 1e3))
                                results.append(r)
                                log(f'{name} b{batch} {mode} {dtype} {layout} io={io}: {med:.3f} ms')
                                del once
                                torch.cuda.empty_cache()
    out = dict(
        torch=torch.__version__, torchvision=torchvision.__version__, cuda=torch.version.cuda,
        device=torch.cuda.get_device_name(0), cudnn=torch.backends.cudnn.version(),
        cudnn_benchmark=True, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
        matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        runs=a.runs, warmup=a.warmup, date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), results=results)
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
