#!/usr/bin/env bash
# The GPU machine's measurements, in parts that each fit one 10-minute command on one warm machine, so that every
# comparison in BENCHMARKS.md is a ratio from one run. Here first: npm ci && npm run build && bash ../shared/gpu/pack.sh;
# then on the GPU machine, with the build and .gpu/ carried:  bash bench/gpu-suite.sh PART
#   torch     PyTorch's reference (CUDA graph, fp32/fp16, contiguous/channels_last, GPU/host I/O), and torchvision's
#             models exported to ONNX into $ONNX_DIR for the parts below
#   b1        host path at batch 1: every way in and out, fp32 and fp16, unfused, 4 runs in flight, and 4 requests
#             batched on the fly into one batch-4 inference (host-path.js)
#   b32       host path at batch 32, and `fcm-opt bench` against onnxruntime WebGPU at batch 32
#   int8      the int8 MobileNetV2 and MobileNetV1 (integer kernels) against the same models in fp32; per-node profiles;
#             the integer subgroup-matrix tiles per layer
#   firstrun  time to the first result, pipelines compiled one by one against all at once, driver shader cache off
#   kernels   per-layer bandwidth of MobileNetV2's layers at batch 32 against a copy kernel (fp32 and fp16)
#   grouped   regnet_x_400mf's grouped conv layers: the grouped kernel (rule and other tiles) against the general one
#   stem      the zoo models' stem convolutions: the staged form (rule and other tiles) against the filter-blocked one
#   small     batch 1's latency-bound layers: where the pass goes node by node, the tuner's kernel variants of the
#             pointwise layers (split-K with filters and positions per thread) and the tuned plan checked and timed
# Results go to $OUT (one JSON file per tool, logs beside them).
set -uo pipefail
part=${1:?part: torch, b1, b32, int8, firstrun, kernels, grouped, stem or small}
: "${OUT:=/tmp/fcm-gpu-out}"
: "${ONNX_DIR:=/tmp/fcm-onnx}"
mkdir -p "$OUT" "$ONNX_DIR"
[ -n "${FCM_GPU_ENTERED:-}" ] || { source .gpu/enter.sh; export FCM_GPU_ENTERED=1; }
models5=mobilenet_v2,mobilenet_v3_large,mnasnet1_0,efficientnet_b0,shufflenet_v2_x1_0
need_onnx() {
  for b in "$@"; do
    [ -s "$ONNX_DIR/mobilenet_v2-b$b.onnx" ] || python3 bench/pytorch-reference.py --export "$ONNX_DIR" --batches "$b" --runs 1 --warmup 1 --modes eager --dtypes fp32 --layouts contiguous --io gpu > /dev/null 2>> "$OUT/export.log"
  done
}
case "$part" in
  torch)
    # TORCH_ARGS narrows it (e.g. --io gpu --runs 30) where device time is short.
    python3 bench/pytorch-reference.py --export "$ONNX_DIR" --modes graph --runs 50 --warmup 10 ${TORCH_ARGS:-} > "$OUT/torch.json" 2> "$OUT/torch.log"
    tail -3 "$OUT/torch.log" ;;
  b1)
    # batch 4 too: host-path.js batches 4 requests in flight on the fly with it (src/pipeline/batching.ts)
    need_onnx 1 4
    node dist/bench/host-path.js --out "$OUT/b1" --onnx-dir "$ONNX_DIR" --models "${MODELS:-$models5}" --batches 1 --runs 100 --warmup 10 --hw h100 --concurrency 4 2>&1 | tee "$OUT/b1.log" ;;
  b32)
    need_onnx 32
    node dist/bench/host-path.js --out "$OUT/b32" --onnx-dir "$ONNX_DIR" --models "${MODELS:-mobilenet_v2,mobilenet_v3_large,efficientnet_b0}" --batches 32 --runs 30 --warmup 5 --hw h100 --concurrency 1 2>&1 | tee "$OUT/b32.log"
    b32models=${MODELS:-mobilenet_v2,mobilenet_v3_large,efficientnet_b0}
    for m in ${b32models//,/ }; do
      node bin/fcm-opt.js bench "$ONNX_DIR/$m-b32.onnx" --batch 32 --hw h100 --runs 20 --warmup 3 2>&1 | tee "$OUT/bench-$m-b32.txt"
    done ;;
  int8)
    for m in mobilenet_v2 mob_v1; do node dist/bench/int8.js --model "$m" --runs 100 --warmup 10 --hw h100 --out "$OUT" 2>&1 | tee -a "$OUT/int8.log"; done
    # Where the integer MobileNetV2's GPU time goes, node by node, against the same model on the float kernels.
    node dist/bench/diag.js --parts profiles --models "" --int8-models mobilenet_v2 --hw h100 --out "$OUT" 2>&1 | tee "$OUT/int8-profile.log"
    # Every integer subgroup-matrix tile (padded rows among them) against the word kernel, per layer, bit-exact.
    node dist/bench/int8-subgroup-matrix.js --batches 32,1 --no-e2e --out "$OUT" 2>&1 | tee "$OUT/int8-smx.log" ;;
  firstrun)
    need_onnx 1
    for m in mobilenet_v2 efficientnet_b0; do for a in 0 1 0 1; do
      FCM_OPT_ASYNC_COMPILE=$a __GL_SHADER_DISK_CACHE=0 node dist/bench/first-run.js "$ONNX_DIR/$m-b1.onnx" --hw h100 | tee -a "$OUT/first-run.jsonl"
    done; done ;;
  kernels)
    node dist/bench/layer-kernels.js --models mobilenet_v2 --batches 32 --auto-only --out "$OUT" 2>&1 | tee "$OUT/kernels.log" ;;
  grouped)
    node dist/bench/grouped-conv.js --batches 1,32 --precisions f32,f16 --out "$OUT" 2>&1 | tee "$OUT/grouped.log" ;;
  stem)
    node dist/bench/stem-conv.js --batches 1,32 --precisions f32,f16 --out "$OUT" 2>&1 | tee "$OUT/stem.log" ;;
  small)
    need_onnx 1
    node dist/bench/node-times.js "$ONNX_DIR/mobilenet_v2-b1.onnx" "$ONNX_DIR/shufflenet_v2_x1_0-b1.onnx" "$ONNX_DIR/mnasnet1_0-b1.onnx" --batch 1 --top 30 --rounds 3 2>&1 | tee -a "$OUT/small.log"
    tuned="$OUT/tuned-mobilenet_v2-b1.json"
    node bin/fcm-opt.js plan "$ONNX_DIR/mobilenet_v2-b1.onnx" --batch 1 --hw h100 --tune --plan "$tuned" 2>&1 | tee -a "$OUT/small.log"
    node bin/fcm-opt.js check "$ONNX_DIR/mobilenet_v2-b1.onnx" --hw h100 --load-plan "$tuned" 2>&1 | tee -a "$OUT/small.log"
    node bin/fcm-opt.js bench "$ONNX_DIR/mobilenet_v2-b1.onnx" --hw h100 --load-plan "$tuned" --runs 50 --warmup 10 2>&1 | tee -a "$OUT/small.log" ;;
  *) echo "unknown part $part" >&2; exit 2 ;;
esac
