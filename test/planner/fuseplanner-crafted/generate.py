# Regenerates cases.json: small layer chains and GPU descriptions drawn with a fixed seed, and what the
# FusePlanner reference (estimator_v2.estimate_dm and builder.to_fuse_or_not_to, run unchanged) estimates for
# them. Not part of the tests (they must not need Python); run by hand when the cases change:
#   python3 test/planner/fuseplanner-crafted/generate.py ../shared/fuseplanner-reference/original \
#     > test/planner/fuseplanner-crafted/cases.json
# The cases reach what the three published DAGs do not: strided pointwise layers, filter counts that are not
# powers of two, 5x5 depthwise kernels, few or many SMs, small L1 and shared memory.
import json, math, random, sys, io, contextlib, dataclasses

sys.path.insert(0, sys.argv[1])
import estimator_v2 as est
import builder
import utils

rng = random.Random(20240430)

def conv(i, typ, c, f, hw, s, k):
    out = math.ceil(hw / s)
    ws = [c, k, k] if typ == 'dw' else [f, c]
    return {'id': i, 'name': f'{typ}{i}', 'type': typ, 'activation': '0', 'parents': [], 'children': [],
            'ifms_shape': [c, hw, hw], 'ofms_shape': [c if typ == 'dw' else f, out, out],
            'weights_shape': ws, 'strides': s}

def random_dag():
    layers, c, hw = [], rng.choice([3, 8, 16, 24, 32]), rng.choice([7, 14, 16, 28, 32, 56])
    kinds = rng.choice([['pw', 'dw', 'pw'], ['dw', 'pw', 'pw'], ['pw', 'pw', 'dw', 'pw'], ['pw', 'dw', 'add', 'pw', 'pw']])
    for typ in kinds:
        i = len(layers)
        if typ == 'add':
            layers.append({'id': i, 'name': f'add{i}', 'activation': '0', 'parents': [], 'children': [],
                           'ifms_shape': [1, hw, hw, c], 'ofms_shape': [1, hw, hw, c]})
            continue
        s = rng.choice([1, 1, 2])
        k = rng.choice([3, 3, 5])
        f = rng.choice([8, 12, 16, 24, 40, 48, 64, 96, 100, 128])
        l = conv(i, typ, c, f, hw, s, k)
        layers.append(l)
        c, hw = l['ofms_shape'][0], l['ofms_shape'][1]
    for a, b in zip(layers, layers[1:]):
        a['children'].append(b['id']); b['parents'].append(a['id'])
    return layers

def info(x):
    return None if x == -1 or x is None else dataclasses.asdict(x)

def estimates(dag, hw):
    lbl = [None] * len(dag)
    with contextlib.redirect_stdout(io.StringIO()):
        builder.layer_by_layer_dm_estimation(dag, hw, lbl)
        out = {'layer_by_layer': {str(i): info(e) for i, e in enumerate(lbl) if utils.is_conv_layer(dag[i])}}
        for kind, fn in (('pwdw', builder.pw_dw_dm_estimation), ('dwpw', builder.dw_pw_dm_estimation),
                         ('pwpw', builder.pw_pw_dm_estimation)):
            cands, fused = {}, {}
            fn(dag, hw, cands)
            builder.to_fuse_or_not_to(lbl, cands, fused)
            out[kind] = {'candidates': {str(k): info(v) for k, v in cands.items()},
                         'fused': {str(k): v for k, v in fused.items() if v is not None}}
    return out

cases = []
while len(cases) < 120:
    dag = random_dag()
    # From case 48 on, L1 at most the shared memory, so that its limit (tile + output tile) is the one that binds.
    l1 = rng.choice([8, 16, 32, 96, 128, 256]) if len(cases) < 48 else rng.choice([1, 2, 4, 8, 16])
    shmem = rng.choice([4, 16, 48, 64, 100, 228]) if len(cases) < 48 else rng.choice([16, 64, 228])
    hw = {'sms': str(rng.choice([1, 4, 16, 46, 80, 132])), 'l1': str(l1), 'shmem': str(shmem), 'warp_size': '32'}
    try:
        e = estimates(dag, hw)
    except ZeroDivisionError:
        continue  # builder.to_fuse_or_not_to divides by the avoided accesses, which can be 0
    cases.append({'dag': dag, 'hw': hw, 'estimates': e})
json.dump(cases, sys.stdout, separators=(',', ':'))
print()
