set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
# Batch 1 with --tune plans: each model's fused modules timed against their layers (5 tile variants), losers unfused;
# then the modules part measures the tuned plans again (its own rounds).
timeout 330 node dist/bench/gpu.js --out $OUT/r/t1 --parts modules --batch 1 --hw h100 --tune > $OUT/r/t1.log 2>&1
date -u >> $OUT/r/date.txt
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
cp bench/run11e.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
