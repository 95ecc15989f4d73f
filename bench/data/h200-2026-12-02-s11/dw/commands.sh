set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
# Heats the GPU out of its idle clock first (a lease's first timings can run at 345 MHz).
timeout 60 node dist/bench/layer-kernels.js --models '' --heat-ms 300 > $OUT/r/heat.log 2>&1
timeout 200 node dist/bench/layer-kernels.js --models mobilenet_v2,mobilenet_v3_large,mnasnet1_0,efficientnet_b0 --batches 32,8 --auto-only --dw-variants --heat-ms 50 --out $OUT/r/lk > $OUT/r/lk.log 2>&1
date -u >> $OUT/r/date.txt
timeout 100 node dist/bench/gpu.js --out $OUT/r/e --parts e2e --runs 100 --warmup 10 --hw h100 > $OUT/r/e.log 2>&1
date -u >> $OUT/r/date.txt
timeout 60 node dist/bench/layer-kernels.js --models '' --heat-ms 300 > $OUT/r/heat2.log 2>&1
timeout 120 node dist/bench/gpu.js --out $OUT/r/d --parts modules --batch 8 --heat-ms 300 --hw h100 > $OUT/r/d.log 2>&1
timeout 100 node dist/bench/gpu.js --out $OUT/r/m1 --parts modules --batch 1 --heat-ms 300 --hw h100 > $OUT/r/m1.log 2>&1
timeout 60 node bin/fcm-opt.js bench fixtures/bundled/mobilenetv2-slim.onnx --hw h100 --runs 100 --warmup 10 > $OUT/r/bench.log 2>&1
date -u >> $OUT/r/date.txt
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
cp bench/run11c.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
