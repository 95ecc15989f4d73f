set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
node dist/bench/fcm-kernels.js --set zoo --batch 8 --iters 50 > $OUT/r/fcm-b8.log 2>&1
timeout 120 node dist/bench/gpu.js --out $OUT/r/d --parts e2e,modules --runs 100 --warmup 10 --batch 8 --hw h100 > $OUT/r/d.log 2>&1
timeout 100 node dist/bench/gpu.js --out $OUT/r/m1 --parts modules --batch 1 --hw h100 > $OUT/r/m1.log 2>&1
timeout 60 node bin/fcm-opt.js bench fixtures/bundled/mobilenetv2-slim.onnx --hw h100 --runs 100 --warmup 10 > $OUT/r/bench.log 2>&1
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
date -u >> $OUT/r/date.txt
cp bench/run8.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
