set -u
source .gpu/enter.sh
mkdir -p $OUT/r
date -u > $OUT/r/date.txt
cp bench/run11f.sh $OUT/r/commands.sh
# timeNodes: every node of a session in one submission after the heat (no host round trip between nodes).
timeout 80 node dist/bench/gpu.js --out $OUT/r/m1 --parts modules --batch 1 --hw h100 > $OUT/r/m1.log 2>&1
date -u >> $OUT/r/date.txt
timeout 60 node dist/bench/gpu.js --out $OUT/r/d --parts modules --batch 8 --hw h100 > $OUT/r/d.log 2>&1
date -u >> $OUT/r/date.txt
