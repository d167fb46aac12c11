"""Which number formats are fast where: bf16 autocast is a speed-up on some hardware only."""

from __future__ import annotations


def bf16_supported(device: str) -> bool:
    """Whether bf16 autocast is fast on ``device``: a bf16 GPU, or a CPU with AMX/AVX-512 bf16.

    On other CPUs (AVX2 only) bf16 autocast is emulated and several times slower than fp32.
    """
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
