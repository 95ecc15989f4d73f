# Writes the .npz files of test/npz.test.ts with NumPy (np.savez: stored members with ZIP64 local headers;
# np.savez_compressed: deflated members). Values are exact in float32. Run: python3 make.py
import numpy as np
x = (np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) - 11.5) / 4
w = np.array([[1.5, -2.25], [0.125, 1024.0]], dtype=np.float64)
np.savez('savez.npz', x=x, w=w)
np.savez_compressed('savez-compressed.npz', x=x, **{'input:0': w.astype(np.float32)})
