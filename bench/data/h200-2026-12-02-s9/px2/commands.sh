set -u
source .gpu/enter.sh
mkdir -p $OUT/r
date -u > $OUT/r/date.txt
timeout 400 node dist/bench/layer-kernels.js --batches 32 --heat-ms 50 --rounds 3 --out $OUT/r/lk > $OUT/r/lk.log 2>&1
date -u >> $OUT/r/date.txt
cp bench/run9.sh $OUT/r/commands.sh
cd $OUT && tar czf r.tgz r && rm -rf r
