"""A generator that draws spectrograms the way sounds are made: a noise floor, tones with harmonics and
moving pitch, and bursts of noise, mixed in power and seen through the teacher's own front end.

Real log-Mel spectrograms are sparse and sharp: lines one or two mel bins wide (tones and their
harmonics), edges one frame wide (onsets, clicks), textured noise over a quiet floor. Convolutional
generators make smooth blobs and stripes instead. Here a network maps (z, class) to the *parameters*
of a few sound events, and a fixed, differentiable renderer draws them, so every sample is made of
sound-like parts whatever the losses ask for:
- floor: a level per mel bin and a level over time;
- tones: a pitch track (f0 over time, on a log-frequency scale), its first `harmonics` partials at
  exact multiples of f0 placed on the mel axis, each with its own level, a level over time and an
  on/off window with sharp edges;
- bursts: a band of noise (low and high mel edges) with an on/off window, optionally chopped into
  a pulse train (ticks, hammering, barks), with speckle like real noise.
Slowly varying controls are `knots` points over time, interpolated to any number of frames.

The teacher's gradients steer these few controls poorly in a hundred steps (the generators study in
figures/results.md: the teacher accepts about half the samples), so EventsWithGainGenerator lays a
learnt, bounded time-frequency gain from the 2-D generator over the drawn events.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..features import FeatureConfig, Normalizer
from .generator import Generator, TimeFrequencyGenerator, class_embedding, condition, soft_clip

INIT_SPREAD = 4.0
# The gain over the events reaches at most this many standard deviations of each mel bin's level:
# enough to steer the teacher, too little to paint over the events' lines, onsets and speckle.
GAIN_RANGE = 1.0


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """HTK mel scale, as torchaudio's MelSpectrogram uses by default."""
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def window(t: torch.Tensor, start: torch.Tensor, end: torch.Tensor, sharpness: float) -> torch.Tensor:
    """A soft box over `t` from `start` to `end` (broadcast), edges about 1/sharpness wide."""
    return torch.sigmoid(sharpness * (t - start)) * torch.sigmoid(sharpness * (end - t))


class SoundEventGenerator(nn.Module):
    """z (B, nz) [+ labels (B,)] -> x (B, n_mels, frames) in the teacher's normalised units."""

    def __init__(self, n_mels: int, n_classes: int, nz: int = 128, hidden: int = 256, tones: int = 3,
                 harmonics: int = 6, bursts: int = 4, knots: int = 8, conditional: bool = True,
                 class_input: str = "scale", *, feature_config: FeatureConfig, normalizer: Normalizer):
        super().__init__()
        if feature_config.n_mels != n_mels:
            raise ValueError(f"feature_config has {feature_config.n_mels} mel bins, the generator {n_mels}")
        self.n_mels, self.n_classes, self.nz, self.conditional = n_mels, n_classes, nz, conditional
        self.class_input = class_input
        self.tones, self.harmonics, self.bursts, self.knots = tones, harmonics, bursts, knots
        f_max = feature_config.f_max or feature_config.sample_rate / 2
        self.f_low, self.f_high = max(feature_config.f_min, 40.0), f_max
        mel_low, mel_high = hz_to_mel(torch.tensor(feature_config.f_min)), hz_to_mel(torch.tensor(f_max))
        self.register_buffer("mel_edges", torch.stack([mel_low, mel_high]))
        self.register_buffer("mean_db", normalizer.mean.detach().reshape(-1).clone())
        self.register_buffer("std_db", normalizer.std.detach().reshape(-1).clone())
        self.label_embedding = class_embedding(n_classes, nz, conditional, class_input)
        self.sizes = {"floor_mel": n_mels, "floor_time": knots,
                      "tone_f0": tones * knots, "tone_level": tones * knots, "tone_partials": tones * harmonics,
                      "tone_span": tones * 2, "tone_width": tones,
                      "burst_band": bursts * 2, "burst_span": bursts * 2, "burst_level": bursts * knots,
                      "burst_pulses": bursts * 3}
        self.net = nn.Sequential(nn.Linear(nz, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, sum(self.sizes.values())))
        with torch.no_grad():  # controls spread over their ranges from the start, not all at the middle
            self.net[-1].weight.mul_(INIT_SPREAD)
        # Each class's own event layout (pitch tracks, spans, bands, levels), added to the network's output.
        # z scaled by a class embedding cannot carry it: z is symmetric about 0, so z * e(class) keeps only
        # |e|, and the classes' mean controls stay nearly equal (a shared mode in every class's samples).
        self.class_controls = nn.Embedding(n_classes, sum(self.sizes.values())) if conditional else None

    def controls(self, z: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The raw (unbounded) event parameters by name, each (B, size); forward squashes them into range."""
        raw = self.net(condition(z, labels, self.label_embedding, self.class_input))
        if self.class_controls is not None:
            raw = raw + self.class_controls(labels)
        return dict(zip(self.sizes, raw.split(list(self.sizes.values()), dim=1)))

    def _over_time(self, knots: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, ..., knots) control points -> (B, ..., frames), linearly interpolated."""
        shape = knots.shape
        flat = knots.reshape(-1, 1, shape[-1])
        return F.interpolate(flat, size=frames, mode="linear", align_corners=True).reshape(*shape[:-1], frames)

    def _mel_position(self, hz: torch.Tensor) -> torch.Tensor:
        """Fractional mel-bin index of a frequency (bin k's filter peaks at index k)."""
        low, high = self.mel_edges
        return (hz_to_mel(hz) - low) / ((high - low) / (self.n_mels + 1)) - 1

    def forward(self, z: torch.Tensor, frames: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return soft_clip(self.unclipped(z, frames, labels))

    def unclipped(self, z: torch.Tensor, frames: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The drawn events in the teacher's normalised units, before the soft clip to +-OUTPUT_RANGE."""
        c = self.controls(z, labels)
        batch = z.shape[0]
        scale = float(self.std_db.mean())
        bins = torch.arange(self.n_mels, device=z.device, dtype=z.dtype)
        t = torch.linspace(0, 1, frames, device=z.device, dtype=z.dtype)
        sharp = 2.0 * frames  # edges about half a frame wide

        floor_db = ((self.mean_db - 1.5 * self.std_db)[:, None] + scale * torch.tanh(c["floor_mel"])[..., None]
                    + scale * torch.tanh(self._over_time(c["floor_time"][:, None], frames)))
        power = 10 ** (floor_db / 10) * self._speckle(floor_db)

        # Tones: partials h * f0(t), each a narrow Gaussian across mel bins.
        f0_unit = torch.sigmoid(self._over_time(c["tone_f0"].view(batch, self.tones, self.knots), frames))
        f0 = self.f_low * (self.f_high / self.f_low) ** f0_unit                              # (B, tones, T)
        multiples = torch.arange(1, self.harmonics + 1, device=z.device, dtype=z.dtype)
        partial_hz = f0[:, :, None, :] * multiples[None, None, :, None]                   # (B, tones, H, T)
        position = self._mel_position(partial_hz)
        width = 0.5 + 1.5 * torch.sigmoid(c["tone_width"]).view(batch, self.tones, 1, 1, 1)
        shape = torch.exp(-0.5 * ((bins[None, None, None, :, None] - position[:, :, :, None, :]) / width) ** 2)
        audible = (partial_hz < self.f_high).to(z.dtype)[:, :, :, None, :]
        partial_db = -F.softplus(c["tone_partials"]).view(batch, self.tones, self.harmonics, 1, 1) * 10
        span = torch.sigmoid(c["tone_span"]).view(batch, self.tones, 2)
        start, length = span[..., 0:1], span[..., 1:2]
        gate = window(t, start - 0.1, start + length, sharp)                               # (B, tones, T)
        level_db = (self.mean_db.max() + scale * torch.tanh(
            self._over_time(c["tone_level"].view(batch, self.tones, self.knots), frames)))
        tone_power = 10 ** ((level_db[:, :, None, None, :] + partial_db) / 10) * gate[:, :, None, None, :]
        power = power + (tone_power * shape * audible).sum(dim=(1, 2))

        # Bursts: bands of speckled noise, gated, optionally chopped into pulses.
        band = torch.sigmoid(c["burst_band"]).view(batch, self.bursts, 2) * (self.n_mels + 4) - 2
        low, high = band.min(-1, keepdim=True).values, band.max(-1, keepdim=True).values
        across = window(bins, low, high + 1, 3.0)                                          # (B, bursts, F)
        span = torch.sigmoid(c["burst_span"]).view(batch, self.bursts, 2)
        start, length = span[..., 0:1], span[..., 1:2]
        pulses = c["burst_pulses"].view(batch, self.bursts, 3)
        period = 0.03 + 0.5 * torch.sigmoid(pulses[..., 0:1])
        duty = torch.tanh(pulses[..., 2:3])
        chopped = torch.sigmoid(8.0 * (torch.cos(2 * math.pi * t / period + pulses[..., 1:2]) - duty))
        along = window(t, start - 0.1, start + length, sharp) * chopped                     # (B, bursts, T)
        burst_db = (self.mean_db.max() + scale * torch.tanh(
            self._over_time(c["burst_level"].view(batch, self.bursts, self.knots), frames)))
        burst_power = 10 ** (burst_db / 10)[:, :, None, :] * across[..., None] * along[:, :, None, :]
        power = power + (burst_power * self._speckle(burst_power)).sum(1)

        db = 10 * torch.log10(power.clamp_min(1e-10))
        return (db - self.mean_db[:, None]) / self.std_db[:, None]

    @staticmethod
    def _speckle(like: torch.Tensor) -> torch.Tensor:
        """Exponential power fluctuations (mean 1), as in any spectrogram of noise."""
        return -torch.log(torch.rand_like(like).clamp_min(1e-6))

    sample_z = Generator.sample_z


class EventsWithGainGenerator(nn.Module):
    """z (B, nz) [+ labels (B,)] -> x (B, n_mels, frames): drawn sound events under a learnt gain.

    The 2-D generator's output, soft-clipped to +-gain_range, is added to the events in normalised
    log-Mel units, which is a gain in power: it can raise or lower any time-frequency cell by up to
    gain_range standard deviations of that mel bin, so the class can be steered while the events'
    lines, onsets and speckle stay visible. Its last convolution starts at zero: the first samples are
    the events alone, and the gain grows only where the losses ask for it.
    """

    def __init__(self, n_mels: int, n_classes: int, nz: int = 128, conditional: bool = True,
                 gain_range: float = GAIN_RANGE, class_input: str = "scale", *, feature_config: FeatureConfig,
                 normalizer: Normalizer):
        super().__init__()
        self.n_mels, self.n_classes, self.nz, self.conditional = n_mels, n_classes, nz, conditional
        self.events = SoundEventGenerator(n_mels, n_classes, nz, conditional=conditional, class_input=class_input,
                                          feature_config=feature_config, normalizer=normalizer)
        self.gain = TimeFrequencyGenerator(n_mels, n_classes, nz, conditional=conditional, output_range=gain_range,
                                           class_input=class_input)
        nn.init.zeros_(self.gain.out.weight)
        nn.init.zeros_(self.gain.out.bias)

    def forward(self, z: torch.Tensor, frames: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return soft_clip(self.events.unclipped(z, frames, labels) + self.gain(z, frames, labels))

    sample_z = Generator.sample_z
