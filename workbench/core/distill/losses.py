"""Distillation losses: soft targets with temperature, FitNet hints, attention transfer, RKD, SP.

Every function takes student and teacher tensors of one batch and returns a scalar. Features may be
[B, C, H, W] (convolution outputs) or [B, D] (fully connected); `align` reconciles the two where a
loss needs like shapes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_LOSSES = ("fitnet", "attention", "rkd", "sp")
LOSSES = ("logits", *FEATURE_LOSSES)


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """p_i = exp(z_i / T) / sum_j exp(z_j / T)."""
    return F.softmax(logits / temperature, dim=1)


def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(p_teacher || p_student) at temperature T (Hinton et al. 2015), mean over the batch.

    The T^2 keeps the gradients' size independent of T, so `alpha` means the same at any temperature.
    """
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_p_student, teacher_probs, reduction="batchmean") * temperature ** 2


def pooled(feature: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C] by global average pooling; [B, D] unchanged; anything else flattened."""
    if feature.ndim == 4:
        return feature.mean(dim=(2, 3))
    return feature.flatten(1)


def make_adapter(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> nn.Module:
    """FitNet regressor: a 1x1 convolution (spatial features) or a linear map from student to teacher width."""
    if student_feature.ndim == 4 and teacher_feature.ndim == 4:
        return nn.Conv2d(student_feature.shape[1], teacher_feature.shape[1], 1, bias=False)
    return nn.Linear(pooled(student_feature).shape[1], pooled(teacher_feature).shape[1], bias=False)


def fitnet_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, adapter: nn.Module) -> torch.Tensor:
    """Mean squared error between the adapted student feature and the teacher's (Romero et al. 2015)."""
    if isinstance(adapter, nn.Conv2d):
        s = adapter(student_feature)
        if s.shape[2:] != teacher_feature.shape[2:]:
            h, w = teacher_feature.shape[2:]
            s = F.adaptive_avg_pool2d(s, (h, w))
        return F.mse_loss(s, teacher_feature)
    return F.mse_loss(adapter(pooled(student_feature)), pooled(teacher_feature))


def attention_map(feature: torch.Tensor, size: tuple[int, ...] | None = None) -> torch.Tensor:
    """Spatial attention of a [B, C, H, W] feature: mean over channels of a^2, flattened and L2-normalised."""
    a = feature.pow(2).mean(dim=1, keepdim=True)
    if size is not None and a.shape[2:] != size:
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    return F.normalize(a.flatten(1), dim=1)


def attention_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """Attention transfer (Zagoruyko & Komodakis 2017): mean squared difference of normalised attention maps.

    Averaged over positions as in the paper's code, whose weight beta = 1000 then suits any map size.
    """
    size = tuple(teacher_feature.shape[2:])
    return (attention_map(student_feature, size) - attention_map(teacher_feature)).pow(2).mean()


def _pairwise_distances(e: torch.Tensor) -> torch.Tensor:
    sq = e.pow(2).sum(dim=1)
    d = (sq.unsqueeze(0) + sq.unsqueeze(1) - 2 * e @ e.t()).clamp_min(1e-12).sqrt()
    return d * (1 - torch.eye(len(e), device=e.device, dtype=e.dtype))


def rkd_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Distance-wise RKD: pairwise distances, each normalised by its mean, compared by the Huber loss."""
    s, t = _pairwise_distances(pooled(student)), _pairwise_distances(pooled(teacher))
    n = len(s) * (len(s) - 1)
    s = s / (s.sum() / max(1, n)).clamp_min(1e-12)
    t = t / (t.sum() / max(1, n)).clamp_min(1e-12)
    return F.smooth_l1_loss(s, t)


def _angles(e: torch.Tensor) -> torch.Tensor:
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)   # [B, B, D]: unit vectors e_j - e_i
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()            # cosines of the angle at each anchor


def rkd_angle(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Angle-wise RKD: cosines of the angles formed by every triplet of samples, Huber loss."""
    return F.smooth_l1_loss(_angles(pooled(student)), _angles(pooled(teacher)))


def rkd_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Relational KD (Park et al. 2019) with the paper's weights: 25 x distance + 50 x angle."""
    return 25.0 * rkd_distance(student, teacher) + 50.0 * rkd_angle(student, teacher)


def sp_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving KD (Tung & Mori 2019): row-normalised batch similarity matrices, ||G_s - G_t||_F^2 / b^2."""
    s, t = student.flatten(1), teacher.flatten(1)
    gs, gt = F.normalize(s @ s.t(), dim=1), F.normalize(t @ t.t(), dim=1)
    return (gs - gt).pow(2).sum() / len(s) ** 2
