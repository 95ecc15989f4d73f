set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
timeout 30 node dist/scr-features.mjs > $OUT/r/features.txt 2>&1
timeout 60 node dist/bench/layer-kernels.js --models '' --heat-ms 300 > $OUT/r/heat.log 2>&1
timeout 240 node dist/bench/layer-kernels.js --batches 32 --un --heat-ms 30 --rounds 3 --out $OUT/r/lk32 > $OUT/r/lk32.log 2>&1
date -u >> $OUT/r/date.txt
timeout 180 node dist/bench/layer-kernels.js --batches 8 --un --heat-ms 30 --rounds 3 --out $OUT/r/lk8 > $OUT/r/lk8.log 2>&1
date -u >> $OUT/r/date.txt
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
cp bench/run11a.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
