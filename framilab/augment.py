"""Spectrogram augmentations shared by training and inversion: time crops, SpecAugment masks, generic views.

All take (B, n_mels, T) batches and draw from an optional torch.Generator, so runs are reproducible.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def time_crop(x: torch.Tensor, frames: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random crop of `frames` frames from each sample, at its own random position."""
    batch, n_mels, total = x.shape
    if frames >= total:
        return x
    starts = torch.randint(0, total - frames + 1, (batch,), generator=generator)
    idx = (starts[:, None] + torch.arange(frames)[None, :]).to(x.device)
    return x.gather(2, idx[:, None, :].expand(batch, n_mels, frames))


def spec_masks(x: torch.Tensor, freq_masks: int, freq_width: int, time_masks: int, time_width: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """SpecAugment-style masks: per sample, `freq_masks` bands of up to `freq_width` mel bins and
    `time_masks` spans of up to `time_width` frames, set to 0 (the mean after normalisation)."""
    batch, n_mels, frames = x.shape
    out = x
    for count, width, size, axis in ((freq_masks, freq_width, n_mels, 1), (time_masks, time_width, frames, 2)):
        for _ in range(count):
            w = torch.randint(0, width + 1, (batch,), generator=generator)
            start = (torch.rand(batch, generator=generator) * (size - w + 1)).long()
            pos = torch.arange(size)[None, :]
            mask = ((pos >= start[:, None]) & (pos < (start + w)[:, None])).to(x.device)
            out = out.masked_fill(mask[:, :, None] if axis == 1 else mask[:, None, :], 0.0)
    return out


def student_augment(x: torch.Tensor, generator: torch.Generator | None = None, crop: float = 0.8) -> torch.Tensor:
    """What a distillation student sees, pool samples and real clips alike (so the data-free and the
    KD-on-real students differ in their data only): a random `crop` of each sample's frames, then
    SpecAugment masks (2 bands of up to 8 mel bins, 2 spans of up to 10 frames)."""
    x = time_crop(x, max(1, int(crop * x.shape[-1])), generator)
    return spec_masks(x, 2, 8, 2, 10, generator)


def inversion_jitter(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 2,
                     crop: tuple[float, float] = (0.8, 1.0), min_frames: int = 1) -> torch.Tensor:
    """What the teacher sees of a sample under robust inversion (DeepInversion's jitter, for spectrograms): a
    random crop of `crop` of its frames (at least `min_frames`), a shift of the whole batch by up to `max_shift` mel bins (edge bins
    repeated), and one SpecAugment band and span. A pattern must survive all of them to count as its class,
    so single-bin, single-frame tricks that fool only the teacher stop paying."""
    frames = x.shape[-1]
    x = time_crop(x, max(min_frames, int(frames * torch.empty(1).uniform_(*crop, generator=generator))), generator)
    shift = int(torch.randint(-max_shift, max_shift + 1, (1,), generator=generator))
    if shift > 0:
        x = torch.cat([x[:, :1].expand(-1, shift, -1), x[:, :-shift]], dim=1)
    elif shift < 0:
        x = torch.cat([x[:, -shift:], x[:, -1:].expand(-1, -shift, -1)], dim=1)
    return spec_masks(x, 1, max(1, x.shape[1] // 8), 1, max(1, x.shape[-1] // 8), generator)


def resized_crop(x: torch.Tensor, scale: tuple[float, float] = (0.5, 1.0),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """CMI's generic image view: a random crop over (mel, time) resized back to (n_mels, T), and a
    random flip along time, for the whole batch in one grid_sample call. It ignores what frequency
    and time mean, which is what FRAMI's time crops change."""
    batch = x.shape[0]
    area = torch.empty(batch).uniform_(*scale, generator=generator)
    aspect = torch.exp(torch.empty(batch).uniform_(-0.3, 0.3, generator=generator))
    height = (area * aspect).sqrt().clamp(max=1.0)
    width = (area / aspect).sqrt().clamp(max=1.0)
    centre_y = (torch.rand(batch, generator=generator) * 2 - 1) * (1 - height)
    centre_x = (torch.rand(batch, generator=generator) * 2 - 1) * (1 - width)
    flip = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    images = x[:, None]
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
