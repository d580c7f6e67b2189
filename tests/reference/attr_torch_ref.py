"""Small PyTorch reference versions of the attribute-recovery modules (tests only).

Written for these tests from the documented facts of the original
(RenMin1991/Facial-Attribute-Recovery, SPEC Part B): same computations and
the same state_dict key names, NCHW, so that a ``torch.save`` of their
``state_dict()`` is shaped exactly like the original checkpoints. Modulated
convolutions use the per-sample weight + grouped convolution formulation of
the original (our Keras version uses the equivalent input/output scaling),
and up-sampling uses zero insertion + padding + flipped-kernel convolution.
Imported only by tests that have already done ``pytest.importorskip("torch")``.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F


# ---------------------------------------------------------------- primitives

def fir_kernel(taps):
    k = torch.tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = torch.outer(k, k)
    return k / k.sum()


def upfirdn2d_ref(x, kernel, up=1, down=1, pad=(0, 0)):
    """x [N, C, H, W]; zero-insert by ``up``, pad (p0, p1), convolve, keep every ``down``."""
    n, c, h, w = x.shape
    p0, p1 = pad
    if up > 1:
        z = x.new_zeros(n, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    hh, ww = x.shape[2], x.shape[3]
    x = x[:, :, max(-p0, 0):hh - max(-p1, 0), max(-p0, 0):ww - max(-p1, 0)]
    k = torch.flip(kernel, [0, 1])[None, None].to(x.dtype)
    y = F.conv2d(x.reshape(n * c, 1, x.shape[2], x.shape[3]), k)
    y = y.reshape(n, c, y.shape[2], y.shape[3])
    return y[:, :, ::down, ::down]


def fused_lrelu_ref(x, bias):
    shape = [1, -1] + [1] * (x.dim() - 2)
    return F.leaky_relu(x + bias.view(shape), 0.2) * math.sqrt(2.0)


class EqualLinearT(nn.Module):
    def __init__(self, in_dim, out_dim, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        y = x @ (self.weight * self.scale).t()
        if self.activation:
            return fused_lrelu_ref(y, self.bias * self.lr_mul)
        return y + self.bias * self.lr_mul


class FusedLReLUT(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return fused_lrelu_ref(x, self.bias)


class BlurT(nn.Module):
    def __init__(self, taps, pad, up_factor=1):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps) * (up_factor ** 2))
        self.pad = pad

    def forward(self, x):
        return upfirdn2d_ref(x, self.kernel, pad=self.pad)


class UpsampleT(nn.Module):
    def __init__(self, taps, factor=2):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps) * factor ** 2)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.factor = factor

    def forward(self, x):
        return upfirdn2d_ref(x, self.kernel, up=self.factor, pad=self.pad)


class ModConvT(nn.Module):
    def __init__(self, cin, cout, k, style_dim, demodulate=True, upsample=False,
                 downsample=False, taps=(1, 3, 3, 1)):
        super().__init__()
        self.cin, self.cout, self.k = cin, cout, k
        self.upsample, self.downsample, self.demodulate = upsample, downsample, demodulate
        if upsample:
            p = (len(taps) - 2) - (k - 1)
            self.blur = BlurT(taps, ((p + 1) // 2 + 1, p // 2 + 1), up_factor=2)
        if downsample:
            p = (len(taps) - 2) + (k - 1)
            self.blur = BlurT(taps, ((p + 1) // 2, p // 2))
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.modulation = EqualLinearT(style_dim, cin, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(cin * k * k)

    def forward(self, x, style):
        n, _, h, w = x.shape
        s = self.modulation(style).view(n, 1, self.cin, 1, 1)
        wt = self.scale * self.weight * s                       # [n, out, in, k, k]
        if self.demodulate:
            d = torch.rsqrt(wt.pow(2).sum([2, 3, 4]) + 1e-8)
            wt = wt * d.view(n, self.cout, 1, 1, 1)
        x = x.reshape(1, n * self.cin, h, w)
        if self.upsample:
            wt = wt.transpose(1, 2).reshape(n * self.cin, self.cout, self.k, self.k)
            y = F.conv_transpose2d(x, wt, stride=2, groups=n)
            y = y.view(n, self.cout, y.shape[2], y.shape[3])
            return self.blur(y)
        wt = wt.reshape(n * self.cout, self.cin, self.k, self.k)
        if self.downsample:
            x = self.blur(x.view(n, self.cin, h, w))
            x = x.reshape(1, n * self.cin, x.shape[2], x.shape[3])
            y = F.conv2d(x, wt, stride=2, groups=n)
        else:
            y = F.conv2d(x, wt, padding=self.k // 2, groups=n)
        return y.view(n, self.cout, y.shape[2], y.shape[3])


class NoiseT(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise):
        return x + self.weight * noise


class StyledConvT(nn.Module):
    def __init__(self, cin, cout, k, style_dim, upsample=False):
        super().__init__()
        self.conv = ModConvT(cin, cout, k, style_dim, upsample=upsample)
        self.noise = NoiseT()
        self.activate = FusedLReLUT(cout)

    def forward(self, x, style, noise):
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGBT(nn.Module):
    def __init__(self, cin, style_dim, upsample=True):
        super().__init__()
        if upsample:
            self.upsample = UpsampleT((1, 3, 3, 1))
        self.conv = ModConvT(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        y = self.conv(x, style) + self.bias
        if skip is not None:
            y = y + self.upsample(skip)
        return y


class PixelNormT(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class ConstT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, c, 4, 4))


class GeneratorT(nn.Module):
    """Same keys as the original g_ema; forward takes W+ [N, n_latent, D] and a noise list."""

    def __init__(self, size, style_dim, n_mlp, channel_multiplier=2, channels=None):
        super().__init__()
        cm = channel_multiplier
        table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm,
                 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
        table.update(channels or {})
        self.style = nn.Sequential(PixelNormT(), *[
            EqualLinearT(style_dim, style_dim, lr_mul=0.01, activation="fused_lrelu")
            for _ in range(n_mlp)])
        self.input = ConstT(table[4])
        self.conv1 = StyledConvT(table[4], table[4], 3, style_dim)
        self.to_rgb1 = ToRGBT(table[4], style_dim, upsample=False)
        log_size = int(math.log2(size))
        self.num_layers = (log_size - 2) * 2 + 1
        self.n_latent = log_size * 2 - 2
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        cin = table[4]
        for i in range(3, log_size + 1):
            cout = table[2 ** i]
            self.convs.append(StyledConvT(cin, cout, 3, style_dim, upsample=True))
            self.convs.append(StyledConvT(cout, cout, 3, style_dim))
            self.to_rgbs.append(ToRGBT(cout, style_dim))
            cin = cout

    def forward(self, latent, noise=None):
        if noise is None:
            noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        n = latent.shape[0]
        x = self.input.input.repeat(n, 1, 1, 1)
        x = self.conv1(x, latent[:, 0], noise[0])
        skip = self.to_rgb1(x, latent[:, 1])
        i = 1
        for j, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * j](x, latent[:, i], noise[2 * j + 1])
            x = self.convs[2 * j + 1](x, latent[:, i + 1], noise[2 * j + 2])
            skip = to_rgb(x, latent[:, i + 2], skip)
            i += 2
        return skip


class IDDEncoderT(nn.Module):
    def __init__(self, n_latents, n_mlp, dim=512):
        super().__init__()
        self.mapping = nn.Sequential(*[EqualLinearT(dim, dim, activation="fused_lrelu")
                                       for _ in range(n_mlp - 4)])
        self.heads = nn.ModuleList([nn.Sequential(
            EqualLinearT(dim, dim, activation="fused_lrelu"),
            EqualLinearT(dim, dim, activation="fused_lrelu"),
            EqualLinearT(dim, dim, activation="fused_lrelu"),
            EqualLinearT(dim, dim)) for _ in range(n_latents)])

    def forward(self, z):
        x = self.mapping(z * 16)
        return torch.tanh(torch.stack([head(x) for head in self.heads], dim=1))


# ---------------------------------------------------------------- recognition

class SET(nn.Module):
    def __init__(self, c, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(c // reduction, c, 1, bias=False)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class IRSEUnitT(nn.Module):
    def __init__(self, cin, depth, stride):
        super().__init__()
        if stride == 1:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False),
            nn.BatchNorm2d(depth), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth),
            SET(depth))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSEBackboneT(nn.Module):
    def __init__(self, stage_units=(3, 4, 14, 3), stage_channels=(64, 128, 256, 512)):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(64), nn.PReLU(64))
        units, cin = [], 64
        for n, depth in zip(stage_units, stage_channels):
            for u in range(n):
                units.append(IRSEUnitT(cin if u == 0 else depth, depth, 2 if u == 0 else 1))
            cin = depth
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Dropout(0.1), nn.Flatten(),
                                          nn.Linear(cin * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x):
        x = F.interpolate(x, (112, 112), mode="bilinear", align_corners=True)
        x = self.output_layer(self.body(self.input_layer(x)))
        return x / torch.norm(x, 2, 1, True)


class ConvBlockT(nn.Module):
    def __init__(self, cin, cout, k=1, s=1, p=0, groups=1, prelu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if prelu:
            self.prelu = nn.PReLU(cout)
        self.has_prelu = prelu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.has_prelu else x


class DepthWiseT(nn.Module):
    def __init__(self, cin, cout, residual=False, stride=2, groups=1):
        super().__init__()
        self.conv = ConvBlockT(cin, groups)
        self.conv_dw = ConvBlockT(groups, groups, 3, stride, 1, groups=groups)
        self.project = ConvBlockT(groups, cout, prelu=False)
        self.residual = residual

    def forward(self, x):
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class ResidualT(nn.Module):
    def __init__(self, c, n, groups):
        super().__init__()
        self.model = nn.Sequential(*[DepthWiseT(c, c, True, 1, groups) for _ in range(n)])

    def forward(self, x):
        return self.model(x)


class MobileFaceNetT(nn.Module):
    def __init__(self, blocks=(2, 3, 6)):
        super().__init__()
        self.conv1 = ConvBlockT(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBlockT(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWiseT(64, 64, groups=128)
        self.conv_3 = ResidualT(64, blocks[0], 128)
        self.conv_34 = DepthWiseT(64, 128, groups=256)
        self.conv_4 = ResidualT(128, blocks[1], 256)
        self.conv_45 = DepthWiseT(128, 256, groups=512)
        self.conv_5 = ResidualT(256, blocks[2], 512)
        self.conv_6_sep = ConvBlockT(256, 512)
        self.conv_6_dw = ConvBlockT(512, 512, 7, groups=512, prelu=False)
        self.linear = nn.Linear(512, 512, bias=False)
        self.bn = nn.BatchNorm1d(512)

    def forward(self, x):
        x = F.interpolate(x, (112, 112), mode="bilinear", align_corners=True)
        for name in ("conv1", "conv2_dw", "conv_23", "conv_3", "conv_34", "conv_4",
                     "conv_45", "conv_5", "conv_6_sep", "conv_6_dw"):
            x = getattr(self, name)(x)
        x = self.bn(self.linear(x.flatten(1)))
        return x / torch.norm(x, 2, 1, True)


# ---------------------------------------------------------------- helpers

def randomize_(module, seed=0, scale=0.5):
    """Give every 1-D parameter, bias and BN statistic non-trivial values.

    Weight matrices keep their N(0, 1) (equalised) or torch default init; the
    fixed blur kernels (buffers) are untouched.
    """
    g = torch.Generator().manual_seed(seed)

    def rnd(shape, s=scale):
        return s * torch.randn(shape, generator=g)

    with torch.no_grad():
        done = set()
        for m in module.modules():
            if isinstance(m, nn.PReLU):
                m.weight.copy_(0.25 + rnd(m.weight.shape, 0.1))
                done.add(id(m.weight))
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.copy_(1 + rnd(m.weight.shape, 0.2))
                m.bias.copy_(rnd(m.bias.shape, 0.2))
                m.running_mean.copy_(rnd(m.running_mean.shape, 0.1))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(7)
                done.update((id(m.weight), id(m.bias)))
        for name, p in module.named_parameters():
            if id(p) in done:
                continue
            if name.endswith("modulation.bias"):
                p.copy_(1 + rnd(p.shape))
            elif p.dim() <= 1 or name.endswith(".bias"):
                p.copy_(rnd(p.shape))
    return module


def nchw(x):
    """NHWC numpy -> NCHW torch float32."""
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).float()


def nhwc(t):
    """NCHW torch -> NHWC numpy."""
    return t.detach().numpy().transpose(0, 2, 3, 1)


def save_both(obj, tmp_path, stem):
    """torch.save in zip and legacy formats; returns the two paths."""
    z, legacy = tmp_path / f"{stem}_zip.pt", tmp_path / f"{stem}_legacy.pt"
    torch.save(obj, z)
    torch.save(obj, legacy, _use_new_zipfile_serialization=False)
    return str(z), str(legacy)
