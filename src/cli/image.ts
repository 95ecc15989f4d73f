// `run --image FILE`: a PNG or JPEG made into a model input. Decoded with pure-JS codecs (pngjs, jpeg-js: no native
// parts), RGB (alpha dropped; a one-channel input takes luma, BT.601), resized to the input's H x W by bilinear
// interpolation with half-pixel centres and no antialiasing (ONNX Resize 'linear', coordinate_transformation_mode
// half_pixel), normalised as (pixel * scale - mean[c]) / std[c] (default scale 1/255 and ImageNet's mean and std),
// and laid out as the input is: NCHW when dim 1 is 1 or 3 (the IR's layout), else NHWC when dim 3 is.
// The pixels are taken as stored: EXIF orientation and colour profiles are not applied.
import { FcmError, invalid, overLimit, unsupported } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { checkMemory } from '../memory-budget.js';

export const imagenetMean = [0.485, 0.456, 0.406];
export const imagenetStd = [0.229, 0.224, 0.225];

export interface Normalisation {
  /** Per channel (or one value for every channel). Default ImageNet's, on values scaled to 0..1. */
  mean?: number[];
  std?: number[];
  /** Multiplies the 0..255 pixel before mean and std (default 1/255; 1 keeps 0..255). */
  scale?: number;
}

/** 8-bit RGB, row-major (H, W, 3). */
export interface RgbImage { width: number; height: number; rgb: Uint8Array; format: 'PNG' | 'JPEG' }

const pngMagic = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const startsWith = (b: Uint8Array, m: readonly number[]) => b.length >= m.length && m.every((v, i) => b[i] === v);
const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

/** Image formats fcm-opt recognises but does not decode (exit 3 rather than 'not an image'). */
function otherImageFormat(b: Uint8Array): string | undefined {
  if (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a') return 'GIF';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'WebP';
  if (ascii(b, 0, 2) === 'BM') return 'BMP';
  if (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*') return 'TIFF';
  if (ascii(b, 4, 12) === 'ftypavif' || ascii(b, 4, 12) === 'ftypheic') return ascii(b, 8, 12).toUpperCase();
  return undefined;
}

/** Decodes a PNG or JPEG file to 8-bit RGB. Not an image: exit 2; another image format: exit 3; corrupt: exit 2. */
export async function readImage(file: string, maxMemory: number): Promise<RgbImage> {
  const bytes = await readInputFile(file, { maxBytes: maxMemory });
  const isPng = startsWith(bytes, pngMagic);
  const isJpeg = startsWith(bytes, [0xff, 0xd8, 0xff]);
  if (!isPng && !isJpeg) {
    const other = otherImageFormat(bytes);
    if (other) throw unsupported(file, `${other} images are not supported; --image takes PNG or JPEG`);
    throw invalid(file, 'is not a PNG or JPEG image (--image)');
  }
  const format = isPng ? 'PNG' : 'JPEG';
  let width: number, height: number, rgba: Uint8Array;
  try {
    if (isPng) {
      // The header's size, checked against the budget before the pixels are inflated.
      if (bytes.length >= 24 && ascii(bytes, 12, 16) === 'IHDR') {
        const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        checkMemory(maxMemory, 8 * v.getUint32(16) * v.getUint32(20), 'decoding the image', file);
      }
      // The codecs load on first use: every other command starts without them.
      const pngjs = (await import('pngjs')).default;
      const p = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = p);
      rgba = p.data;
    } else {
      const jpeg = (await import('jpeg-js')).default;
      const j = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, tolerantDecoding: false, maxResolutionInMP: 1000, maxMemoryUsageInMB: Math.max(1, Math.floor(maxMemory / 2 ** 20)) });
      ({ width, height } = j);
      rgba = j.data;
    }
  } catch (e) {
    if (e instanceof FcmError) throw e;
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    if (/maxMemoryUsageInMB|maxResolutionInMP/.test(why)) throw overLimit(file, `decoding the JPEG image needs more than the memory budget (--max-memory)`);
    throw invalid(file, `corrupt ${format} image: ${why}`);
  }
  if (!(width > 0 && height > 0) || rgba.length < width * height * 4) throw invalid(file, `corrupt ${format} image: ${width}x${height} with ${rgba.length} bytes of pixels`);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, n = width * height; i < n; i++) {
    rgb[3 * i] = rgba[4 * i];
    rgb[3 * i + 1] = rgba[4 * i + 1];
    rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return { width, height, rgb, format };
}

/** Where the channels are in a rank-4 image input: NCHW when dim 1 is 1 or 3 (the IR's layout, checked first), NHWC when dim 3 is. */
export function imageLayout(shape: readonly number[], where: string): { layout: 'NCHW' | 'NHWC'; n: number; c: number; h: number; w: number } {
  if (shape.length === 4 && (shape[1] === 1 || shape[1] === 3)) return { layout: 'NCHW', n: shape[0], c: shape[1], h: shape[2], w: shape[3] };
  if (shape.length === 4 && (shape[3] === 1 || shape[3] === 3)) return { layout: 'NHWC', n: shape[0], c: shape[3], h: shape[1], w: shape[2] };
  throw invalid(where, `has shape [${shape.join(',')}]; --image feeds a rank-4 input with 1 or 3 channels (NCHW or NHWC)`);
}

/** Per-channel values of --mean or --std for `c` channels: one value for all, or one per channel. */
function perChannel(values: number[] | undefined, defaults: number[], c: number, flag: string): number[] {
  // One channel with the ImageNet defaults: their average (luma of a grey image keeps the same statistics).
  if (!values) return c === 3 ? defaults : [defaults.reduce((a, b) => a + b, 0) / defaults.length];
  if (values.length === 1) return Array(c).fill(values[0]);
  if (values.length !== c) throw invalid(flag, `gives ${values.length} values; the input has ${c} channel${c === 1 ? '' : 's'} (give 1 or ${c})`);
  return values;
}

/** Bilinear resize of one channel with half-pixel centres, edges clamped: src (sh x sw, stride 3, offset ch) -> dst (h x w). */
function resizeChannel(src: Uint8Array | Float32Array, sh: number, sw: number, stride: number, ch: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w);
  const axis = (dst: number, srcLen: number, i: number) => {
    const x = Math.min(Math.max((i + 0.5) * (srcLen / dst) - 0.5, 0), srcLen - 1);
    const x0 = Math.floor(x);
    const x1 = Math.min(x0 + 1, srcLen - 1);
    return { x0, x1, f: x - x0 };
  };
  const cols = Array.from({ length: w }, (_, i) => axis(w, sw, i));
  for (let y = 0; y < h; y++) {
    const r = axis(h, sh, y);
    for (let x = 0; x < w; x++) {
      const c = cols[x];
      const p = (yy: number, xx: number) => src[(yy * sw + xx) * stride + ch];
      const top = p(r.x0, c.x0) * (1 - c.f) + p(r.x0, c.x1) * c.f;
      const bottom = p(r.x1, c.x0) * (1 - c.f) + p(r.x1, c.x1) * c.f;
      out[y * w + x] = top * (1 - r.f) + bottom * r.f;
    }
  }
  return out;
}

/**
 * The images as one input tensor of `shape` (rank 4, NCHW or NHWC): image i is batch item i. Resized, normalised
 * and laid out as the input's shape says (imageLayout).
 */
export function imagesToTensor(images: readonly (RgbImage & { file: string })[], shape: readonly number[], where: string, norm: Normalisation = {}): Float32Array {
  const { layout, n, c, h, w } = imageLayout(shape, where);
  if (images.length !== n) throw invalid(where, `has a batch of ${n}; ${images.length} image${images.length === 1 ? ' was' : 's were'} given (give ${n}, or --batch ${images.length} where the batch is symbolic)`);
  const mean = perChannel(norm.mean, imagenetMean, c, '--mean');
  const std = perChannel(norm.std, imagenetStd, c, '--std');
  const scale = norm.scale ?? 1 / 255;
  const out = new Float32Array(n * c * h * w);
  images.forEach((img, b) => {
    let source: Uint8Array | Float32Array = img.rgb;
    let stride = 3;
    if (c === 1) {
      // Luma, ITU-R BT.601 weights.
      source = new Float32Array(img.width * img.height);
      for (let i = 0; i < source.length; i++) source[i] = 0.299 * img.rgb[3 * i] + 0.587 * img.rgb[3 * i + 1] + 0.114 * img.rgb[3 * i + 2];
      stride = 1;
    }
    for (let ch = 0; ch < c; ch++) {
      const plane = resizeChannel(source, img.height, img.width, stride, ch, h, w);
      for (let i = 0; i < h * w; i++) {
        const v = (plane[i] * scale - mean[ch]) / std[ch];
        out[layout === 'NCHW' ? (b * c + ch) * h * w + i : (b * h * w + i) * c + ch] = v;
      }
    }
  });
  return out;
}

/** `--mean 0.485,0.456,0.406` / `--std ...`: one number, or one per channel (comma-separated). */
export function parseChannelValues(flag: string, positive: boolean) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    const nums = parts.map(Number);
    if (parts.some((s) => s === '') || nums.some((v) => !Number.isFinite(v) || (positive && v <= 0))) {
      throw invalid(flag, `expected ${positive ? 'positive ' : ''}numbers, one or one per channel separated by commas, got '${value}'`);
    }
    return nums;
  };
}
