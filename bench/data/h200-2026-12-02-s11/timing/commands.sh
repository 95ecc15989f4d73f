set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
# Node timing now heats each session's timing 100 ms and puts each session first in as many rounds (6).
timeout 100 node dist/bench/gpu.js --out $OUT/r/d --parts modules --batch 8 --hw h100 > $OUT/r/d.log 2>&1
timeout 100 node dist/bench/gpu.js --out $OUT/r/m1 --parts modules --batch 1 --hw h100 > $OUT/r/m1.log 2>&1
timeout 100 node dist/bench/gpu.js --out $OUT/r/d2 --parts modules --batch 8 --hw h100 > $OUT/r/d2.log 2>&1
date -u >> $OUT/r/date.txt
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
cp bench/run11d.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
