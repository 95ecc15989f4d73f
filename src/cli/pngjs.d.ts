// The part of pngjs (pure-JS PNG codec, no types of its own) that fcm-opt and its tests use.
declare module 'pngjs' {
  interface PngImage { width: number; height: number; data: Buffer }
  interface PngWriteOptions { colorType?: 0 | 2 | 4 | 6; inputColorType?: 0 | 2 | 4 | 6; bitDepth?: 8 | 16; inputHasAlpha?: boolean }
  export const PNG: {
    sync: {
      read(buffer: Buffer, options?: { skipRescale?: boolean }): PngImage;
      write(png: { width: number; height: number; data: Buffer | Uint8Array }, options?: PngWriteOptions): Buffer;
    };
  };
}
