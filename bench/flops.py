"""Arithmetic of InterpFRNet, for the benchmarks' GFLOP/s figures."""


def conv_flops_per_image(model):
    """2 x multiply-adds of every convolution of one forward pass of an
    ``InterpFRNet`` on a 96x96 image (3.9 GFLOP at paper size)."""
    size, total = 96, 0
    for _, conv, _ in model.base_blocks:
        size //= conv.strides
        total += 2 * size * size * conv.kernel_size ** 2 * conv.in_channels * conv.filters
    if model.has_hypercolumn:
        for conv in (model.pca32_conv, model.pca42_conv, model.k5_conv):
            total += 2 * 24 * 24 * conv.kernel_size ** 2 * conv.in_channels * conv.filters
    return total
