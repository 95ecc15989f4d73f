set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
timeout 300 node dist/bench/layer-kernels.js --batches 32 --heat-ms 30 --rounds 3 --out $OUT/r/lk32 > $OUT/r/lk32.log 2>&1
date -u >> $OUT/r/date.txt
timeout 200 node dist/bench/layer-kernels.js --batches 8 --heat-ms 30 --rounds 3 --out $OUT/r/lk8 > $OUT/r/lk8.log 2>&1
date -u >> $OUT/r/date.txt
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
cp bench/run10b.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
