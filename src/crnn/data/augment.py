"""Label-preserving distortions for text lines, applied to a whole batch at once.

Working on the padded float batch (on whichever device trains) keeps augmentation
out of the per-image Python path: one ``affine_grid``/``grid_sample`` call warps
every image by its own small rotation, shear, scale and shift (and, if asked, a
smooth local bend); stroke weight is two 3x3 pooling calls; contrast, brightness,
blur, noise and inversion are tensor arithmetic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from crnn.config import AugmentConfig


def _uniform(n: int, scale: float, g: torch.Generator, device) -> torch.Tensor:
    return (torch.rand(n, generator=g) * 2 - 1).mul_(scale).to(device)


def _elastic_field(b: int, h: int, w: int, amount: float, g: torch.Generator, device) -> torch.Tensor:
    """A smooth random displacement for ``grid_sample``: (B, H, W, 2) in its [-1, 1] coordinates.

    Control points every half image height (so each character of a line bends on its own, as one hand's
    strokes vary from one letter to the next), each moved by up to ``amount`` x the height in x and y, and
    interpolated bicubically in between.
    """
    step = max(h / 2, 1.0)
    gh, gw = 3, max(2, math.ceil(w / step) + 1)
    disp = (torch.rand(b, 2, gh, gw, generator=g) * 2 - 1) * (amount * h)  # pixels
    disp = disp.to(device)
    field = F.interpolate(disp, size=(h, w), mode="bicubic", align_corners=True)
    # pixels to grid units: the grid spans 2 over the width (x) and over the height (y)
    field = torch.stack([field[:, 0] * (2 / w), field[:, 1] * (2 / h)], dim=-1)
    return field


def _stroke_width(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Thicken or thin each image's ink by a random share (up to ``amount``) of a 3x3 dilation or erosion.

    The ink is the minority: where an image's mean lies below its median the background is light and the ink
    dark (printed pages), otherwise the other way round (MNIST's white strokes), so "thicker" means a 3x3
    minimum filter for the first and a maximum filter for the second. Blending towards the filtered image by
    a share in (0, amount] changes the weight of a stroke by a fraction of a pixel on each side.
    """
    b = x.shape[0]
    dev = x.device
    flat = x.flatten(1)
    dark_ink = (flat.mean(1) < flat.median(1).values).view(b, 1, 1, 1)
    grown = F.max_pool2d(x, 3, stride=1, padding=1)  # light areas grow
    shrunk = -F.max_pool2d(-x, 3, stride=1, padding=1)  # dark areas grow
    t = _uniform(b, amount, g, dev).view(b, 1, 1, 1).to(x.dtype)
    # the dark areas grow where dark ink thickens (t > 0) or light ink thins (t < 0)
    target = torch.where((t > 0) == dark_ink, shrunk, grown)
    return x + t.abs() * (target - x)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Return a randomly distorted copy of ``x`` (B, C, H, W) in [-1, 1].

    ``g`` is a CPU generator (its state is saved in checkpoints, so a resumed run
    draws the same distortions as an uninterrupted one).
    """
    if not cfg.enabled:
        return x
    b, c, h, w = x.shape
    dev = x.device
    # Affine transform in pixel units, then mapped to affine_grid's [-1, 1] coordinates
    # (so a rotation stays a rotation on a wide image).
    ang = _uniform(b, math.radians(cfg.rotate), g, dev)
    shear = _uniform(b, cfg.shear, g, dev)
    scale = 1 + _uniform(b, cfg.scale, g, dev)
    tx = _uniform(b, cfg.translate * 2, g, dev)
    ty = _uniform(b, cfg.translate * 2, g, dev)
    cos, sin = torch.cos(ang), torch.sin(ang)
    a11, a12 = cos / scale, (-sin + shear * cos) / scale
    a21, a22 = sin / scale, (cos + shear * sin) / scale
    theta = torch.stack([
        torch.stack([a11, a12 * h / w, tx], 1),
        torch.stack([a21 * w / h, a22, ty], 1),
    ], 1).to(x.dtype)
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)
    if cfg.elastic > 0:
        grid = grid + _elastic_field(b, h, w, cfg.elastic, g, dev).to(grid.dtype)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg.stroke > 0:
        x = _stroke_width(x, cfg.stroke, g)
    # Contrast and brightness around each image's mean.
    if cfg.contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        con = (1 + _uniform(b, cfg.contrast, g, dev)).view(b, 1, 1, 1).to(x.dtype)
        bri = _uniform(b, cfg.contrast, g, dev).view(b, 1, 1, 1).to(x.dtype)
        x = (x - mean) * con + mean + bri
    if cfg.blur_prob > 0:
        pick = (torch.rand(b, generator=g) < cfg.blur_prob).to(dev)
        if bool(pick.any()):
            k = torch.tensor([0.25, 0.5, 0.25], device=dev, dtype=x.dtype)
            k2 = (k[:, None] * k[None, :]).expand(c, 1, 3, 3)
            blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k2, groups=c)
            x = torch.where(pick.view(b, 1, 1, 1), blurred, x)
    if cfg.noise_std > 0:
        amp = (torch.rand(b, generator=g) * cfg.noise_std).to(dev).view(b, 1, 1, 1).to(x.dtype)
        x = x + torch.randn(x.shape, generator=g).to(dev, x.dtype) * amp
    if cfg.invert_prob > 0:
        inv = (torch.rand(b, generator=g) < cfg.invert_prob).to(dev).view(b, 1, 1, 1)
        x = torch.where(inv, -x, x)
    return x.clamp_(-1, 1)
