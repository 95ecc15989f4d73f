set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
for R in on off; do
  FCM_ROBUSTNESS=$R timeout 100 node dist/bench/gpu.js --out $OUT/r/e2e-$R --parts e2e --runs 100 --warmup 10 --batch 8 --hw h100 > $OUT/r/e2e-$R.log 2>&1
  FCM_ROBUSTNESS=$R timeout 60 node bin/fcm-opt.js bench fixtures/bundled/mobilenetv2-slim.onnx --hw h100 --runs 100 --warmup 10 > $OUT/r/bench-$R.log 2>&1
  FCM_ROBUSTNESS=$R timeout 100 node dist/bench/layer-kernels.js --batches 32,8 --auto-only --heat-ms 100 --out $OUT/r/lk-$R > $OUT/r/lk-$R.log 2>&1
  date -u >> $OUT/r/date.txt
done
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
cp bench/run10.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
