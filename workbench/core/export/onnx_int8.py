"""`onnx_int8`: the ONNX graph quantized to int8 by onnxruntime (static, QDQ, per-channel 7-bit weights).

Activation ranges are calibrated on the data's calibration split (or the example inputs when exported
without data). The file runs int8 kernels in onnxruntime, so its outputs differ from the float model's
by the quantization error: verification reads the file back and runs it on at least 64 inputs (examples,
then calibration inputs), requires the same top-1 class as the float model on at least 95% of them and
outputs within 10% of the largest output; `top1_agreement` records the share.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from . import ExportSource, Format, ModelFn
from .onnx import export_onnx, quantized_reason, runner


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of input batches."""

    def __init__(self, name: str, batches: list[torch.Tensor]) -> None:
        self._items = iter([{name: b.numpy().astype(np.float32)} for b in batches])

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._items, None)


def write(source: ExportSource, path: Path) -> dict[str, Any]:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx"
        export_onnx(source.model, source.example, fp32)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        batches = source.calibration()
        # uint8 activations x int8 weights with 7-bit weight range: x86 CPUs without VNNI add pairs of
        # u8 x s8 products in int16, which saturates with full-range weights (outputs then go wrong)
        quantize_static(str(prepared), str(path), _Reader("input", batches), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8)
        fp32_bytes = fp32.stat().st_size
    return {"calibration_samples": sum(len(b) for b in batches), "fp32_onnx_bytes": fp32_bytes}


def read(path: Path, record: dict[str, Any]) -> ModelFn:
    return runner(path)


FORMAT = Format("onnx_int8", ".int8.onnx", "ONNX quantized to int8 by onnxruntime (static, calibrated)", write, read,
                tolerance=0.1, applies=quantized_reason, min_top1_agreement=0.95, min_inputs=64,
                after_int8="onnx_int8 quantizes the float model itself and cannot take a torch.ao int8 model; put the "
                "ONNX int8 export before Quantize (it replaces int8_static for ONNX)")
