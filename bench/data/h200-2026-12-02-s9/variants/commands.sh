set -u
source .gpu/enter.sh
mkdir -p $OUT/r
nvidia-smi --query-gpu=name,clocks.current.sm,clocks.max.sm --format=csv > $OUT/r/gpu.txt 2>&1
date -u > $OUT/r/date.txt
for v in h100 bench/var-b.cfg bench/var-c.cfg; do
  n=$(basename $v .cfg)
  timeout 100 node dist/bench/gpu.js --out $OUT/r/$n-8 --parts modules --batch 8 --hw $v > $OUT/r/$n-8.log 2>&1
  timeout 100 node dist/bench/gpu.js --out $OUT/r/$n-1 --parts modules --batch 1 --hw $v > $OUT/r/$n-1.log 2>&1
  date -u >> $OUT/r/date.txt
done
nvidia-smi --query-gpu=name,clocks.current.sm --format=csv >> $OUT/r/gpu.txt 2>&1
cp bench/run9.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
