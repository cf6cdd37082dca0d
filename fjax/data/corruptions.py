"""The seven perturbations of DeeperForensics-1.0 at its five levels (FoCus table IV), as
its released `perturbation/distortions.py` does them, with the level table of
`perturbation/add_distortion_to_video.py` (`get_distortion_parameter`):

| kind | DF-1.0 | operation (released function) | levels 1..5 |
| --- | --- | --- | --- |
| saturation | CS | YCbCr chroma deviations x p (`color_saturation`) | 0.4 0.3 0.2 0.1 0.0 |
| contrast | CC | image x p, truncated to uint8 (`color_contrast`) | 0.85 0.725 0.6 0.475 0.35 |
| block_occlusion | BW | max(1, min(h, w) // 256) x p grey (128) 8x8 blocks (`block_wise`) | 16 32 48 64 80 |
| gaussian_noise | GNC | white Gaussian noise of variance p in YCbCr (`gaussian_noise_color`) | 0.001 0.002 0.005 0.01 0.05 |
| gaussian_blur | GB | k x k Gaussian, sigma k / 6 (`gaussian_blur`) | 7 9 13 17 21 |
| pixelation | JPEG | bilinear down by p (h // p), bilinear back up (`jpeg_compression`) | 2 3 4 5 6 |
| video_compression | VC | H.264 (libx264) at CRF p (`video_compression`) | 30 32 35 38 40 |

uint8 RGB in, uint8 RGB out (the release works on OpenCV's BGR frames; every operation
treats the channels alike or converts colour explicitly, so the order changes nothing).
Where the release casts float results with `astype(np.uint8)`, so do we: values are
truncated, not rounded. Random parts draw from the given Generator (the release uses
Python's and NumPy's global generators).

Deliberate differences from the release:
- block_occlusion: the release draws min(h, w) // 256 x p blocks, made for whole 1080p
  frames (4 x p); a face crop under 256 px would get none, so the factor is at least 1.
- saturation / gaussian_noise: the release's YCbCr round trip maps its 0..255 values as
  if they were on [0, 1] (studio-range scaling), which for saturation shifts chroma by
  under 0.01 grey level; here the chroma is scaled around neutral exactly. For noise that
  scaling is what sets the noise size, so it is kept: the noise in Y has standard
  deviation 255 sqrt(p) x 255 / 219 and in Cb, Cr 255 sqrt(p) x 255 / 224 (grey levels,
  BT.601 full-range YCbCr, chroma as (B - Y) / 1.772 and (R - Y) / 1.402).
- video_compression: DF-1.0 re-encodes the whole video (`ffmpeg -i in -crf p out`, so
  libx264's defaults: preset medium, yuv420p, inter frames); evaluation here sees single
  frames, so each frame is encoded as its own one-frame clip (an intra frame, which x264
  codes a few quantiser steps finer than the P frames that make up most of a video at the
  same CRF) and decoded back.
- The release's `--via_xvid` path (the one its dataset used) also writes every other
  perturbed video through XVID and then ffmpeg's default H.264; frames here are perturbed
  and evaluated without that extra encoding.
"""
from __future__ import annotations

import os
import subprocess
import zlib

import cv2
import numpy as np

from fjax.util.errors import UserError

# kind -> the parameter at levels 1..5 (DF-1.0 add_distortion_to_video.py).
LEVELS = {
    'saturation': (0.4, 0.3, 0.2, 0.1, 0.0),             # CS: factor on Cb, Cr
    'contrast': (0.85, 0.725, 0.6, 0.475, 0.35),        # CC: factor on the image
    'block_occlusion': (16, 32, 48, 64, 80),             # BW: 8x8 blocks per 256 px
    'gaussian_noise': (0.001, 0.002, 0.005, 0.01, 0.05),  # GNC: variance (see above)
    'gaussian_blur': (7, 9, 13, 17, 21),                 # GB: kernel size, sigma = k / 6
    'pixelation': (2, 3, 4, 5, 6),                       # JPEG: down-sampling factor
    'video_compression': (30, 32, 35, 38, 40),           # VC: libx264 CRF
}
BLOCK = 8  # BW block side, pixels
KR, KB = 0.299, 0.114  # BT.601 luma weights of R and B
NOISE_SCALE = (255.0 / 219.0, 255.0 / 224.0, 255.0 / 224.0)  # GNC: Y, Cb, Cr


def parse(spec: str) -> tuple[str, int]:
  """'kind:level' -> (kind, level)."""
  kind, _, level = spec.partition(':')
  if kind not in LEVELS or level not in ('1', '2', '3', '4', '5'):
    raise ValueError(f'bad perturbation {spec!r}: kind:level with kind one of '
                     f'{", ".join(LEVELS)} and level 1..5')
  return kind, int(level)


def frame_rng(video_id, frame: int) -> np.random.Generator:
  """The generator of one frame's perturbation, from its video id (str or bytes) and
  frame index: the same draw wherever that frame is perturbed."""
  vid = video_id.encode() if isinstance(video_id, str) else bytes(video_id)
  return np.random.default_rng(zlib.crc32(vid) + int(frame))


def perturbed_name(config_name: str, kind: str, level: int) -> str:
  """The builder config of a data set whose whole frames were perturbed before face
  cropping (DeeperForensics-1.0's order): `c23` -> `c23_gaussian_blur_3`."""
  return f'{config_name}_{kind}_{level}'


def corrupt(image: np.ndarray, kind: str, level: int, rng: np.random.Generator) -> np.ndarray:
  """`image` (uint8 RGB, h x w x 3) perturbed by `kind` at `level` (1..5); `rng` is used
  by block_occlusion and gaussian_noise only."""
  if kind not in LEVELS:
    raise ValueError(f'unknown corruption {kind!r}; one of {", ".join(LEVELS)}')
  p = LEVELS[kind][level - 1]
  h, w = image.shape[:2]
  if kind == 'saturation':
    ycc = rgb_to_ycbcr(image)
    ycc[..., 1:] *= p
    return _truncate(ycbcr_to_rgb(ycc))
  if kind == 'contrast':
    return _truncate(image.astype(np.float32) * np.float32(p))
  if kind == 'block_occlusion':
    out = image.copy()
    for _ in range(max(1, min(h, w) // 256) * p):
      c = int(rng.integers(0, max(1, w - BLOCK)))  # the release: randint(0, w - 1 - 8)
      r = int(rng.integers(0, max(1, h - BLOCK)))
      out[r:r + BLOCK, c:c + BLOCK] = 128
    return out
  if kind == 'gaussian_noise':
    noise = rng.standard_normal(image.shape) * (np.sqrt(p) * 255.0) * np.array(NOISE_SCALE)
    return _truncate(ycbcr_to_rgb(rgb_to_ycbcr(image) + noise))
  if kind == 'gaussian_blur':
    return cv2.GaussianBlur(image, (p, p), p / 6.0)
  if kind == 'pixelation':
    small = cv2.resize(image, (max(1, w // p), max(1, h // p)), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
  return h264_round_trip(image, p)


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
  """BT.601 full-range Y, Cb, Cr (float64, 0..255 scale, chroma centred on 0)."""
  x = image.astype(np.float64)
  y = KR * x[..., 0] + (1 - KR - KB) * x[..., 1] + KB * x[..., 2]
  return np.stack([y, (x[..., 2] - y) / (2 * (1 - KB)), (x[..., 0] - y) / (2 * (1 - KR))], -1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
  """The exact inverse of `rgb_to_ycbcr` (float64 RGB, not clipped)."""
  y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
  r = y + 2 * (1 - KR) * cr
  b = y + 2 * (1 - KB) * cb
  g = (y - KR * r - KB * b) / (1 - KR - KB)
  return np.stack([r, g, b], -1)


def _truncate(x: np.ndarray) -> np.ndarray:
  """The release's `astype(np.uint8)`: clip, then drop the fraction; a value within 1e-6
  below an integer counts as that integer (so a grey pixel, whose Y is 127.99999999999999
  in float arithmetic, stays 128)."""
  return np.floor(np.clip(x + 1e-6, 0, 255)).astype(np.uint8)


def ffmpeg_exe() -> str:
  """The ffmpeg binary that imageio-ffmpeg ships (or $IMAGEIO_FFMPEG_EXE); a UserError
  naming the fix when there is none."""
  try:
    import imageio_ffmpeg  # pylint: disable=g-import-not-at-top
    exe = imageio_ffmpeg.get_ffmpeg_exe()
  except (ImportError, RuntimeError) as e:
    raise UserError('video_compression needs an ffmpeg binary: pip install imageio-ffmpeg '
                    f'(requirements.txt) or set IMAGEIO_FFMPEG_EXE ({e})') from e
  if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
    raise UserError(f'video_compression needs an ffmpeg binary: {exe} is not an executable '
                    'file (check IMAGEIO_FFMPEG_EXE or reinstall imageio-ffmpeg)')
  return exe


def h264_round_trip(image: np.ndarray, crf: int) -> np.ndarray:
  """`image` encoded as a one-frame H.264 clip (libx264, preset medium, CRF `crf`,
  yuv420p: what `ffmpeg -i in.mp4 -crf crf out.mp4` uses for DF-1.0's videos) and decoded
  back to RGB, through pipes (no files). yuv420p needs even sides: an odd side is padded
  by repeating its last row or column, and the padding is cut off after decoding."""
  h, w = image.shape[:2]
  padded = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge')
  ph, pw = padded.shape[:2]
  exe = ffmpeg_exe()
  quiet = [exe, '-hide_banner', '-loglevel', 'error', '-nostdin', '-threads', '1']
  encoded = _pipe(quiet + ['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', f'{pw}x{ph}',
                           '-i', 'pipe:0', '-frames:v', '1', '-c:v', 'libx264',
                           '-preset', 'medium', '-crf', str(crf), '-pix_fmt', 'yuv420p',
                           '-f', 'h264', 'pipe:1'], np.ascontiguousarray(padded).tobytes())
  decoded = _pipe(quiet + ['-f', 'h264', '-i', 'pipe:0', '-f', 'rawvideo',
                           '-pix_fmt', 'rgb24', 'pipe:1'], encoded)
  if len(decoded) != ph * pw * 3:
    raise UserError(f'ffmpeg decoded {len(decoded)} bytes for a {pw}x{ph} RGB frame')
  return np.frombuffer(decoded, np.uint8).reshape(ph, pw, 3)[:h, :w].copy()


def _pipe(cmd: list, data: bytes) -> bytes:
  proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
  if proc.returncode != 0:
    last = (proc.stderr.decode(errors='replace').strip().splitlines() or ['no message'])[-1]
    raise UserError(f'ffmpeg failed (exit {proc.returncode}): {last}')
  return proc.stdout
