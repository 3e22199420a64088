"""Named architectures (`arch:NAME[:k=v,...]`), sized from the data's input shape and class count."""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from .errors import SpecError
from .limits import MAX_HIDDEN_LAYERS, MAX_LAYER_SIZE, clip, int_in, short

InputShape = tuple[int, int, int]


class MLP(nn.Module):
    """Flatten, then fully connected layers fc1..fcN with ReLU between (LeNet-300-100 is MLP(784, [300, 100], 10))."""

    def __init__(self, in_features: int, hidden: list[int], num_classes: int) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        sizes = [in_features, *hidden, num_classes]
        self.depth = len(sizes) - 1
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            setattr(self, f"fc{i + 1}", nn.Linear(a, b))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        for i in range(1, self.depth):
            x = self.relu(getattr(self, f"fc{i}")(x))
        out: torch.Tensor = getattr(self, f"fc{self.depth}")(x)
        return out


class LeNet5(nn.Module):
    """LeNet-5: two 5x5 convolutions with pooling, then 120-84-classes. Small inputs are resized to 32x32."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28) -> None:
        super().__init__()
        self.resize = nn.Upsample(size=(32, 32), mode="bilinear", align_corners=False) if input_size < 28 else nn.Identity()
        size = 32 if input_size < 28 else input_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        spatial = ((size // 2) - 4) // 2
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(16 * spatial * spatial, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.flatten(self.features(self.resize(x))))
        return out


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: torch.Tensor = self.relu(out + self.shortcut(x))
        return result


class ResNet(nn.Module):
    """CIFAR-style ResNet: 3x3 stem, three stages of basic blocks (resnet8 = one block per stage)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 blocks: int = 1, input_size: int = 32) -> None:
        super().__init__()
        self.resize = nn.Upsample(size=(32, 32), mode="bilinear", align_corners=False) if input_size < 32 else nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        stages, cin = [], width
        for i, cout in enumerate([width, width * 2, width * 4]):
            blocks_i = [BasicBlock(cin if b == 0 else cout, cout, (1 if i == 0 else 2) if b == 0 else 1) for b in range(blocks)]
            stages.append(nn.Sequential(*blocks_i))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.resize(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        out: torch.Tensor = self.fc(self.flatten(self.pool(x)))
        return out


def _size(text: str, option: str) -> int:
    """One layer size of an `arch:` option: an integer in [1, MAX_LAYER_SIZE]."""
    try:
        value = int(text.strip())
    except ValueError:
        raise SpecError(f"{option}: expected a whole number, got {short(text)}") from None
    if not int_in(value, 1, MAX_LAYER_SIZE):
        raise SpecError(f"{option}: must be in [1, {MAX_LAYER_SIZE:,}], got {value}")
    return value


def _ints(value: str, option: str = "hidden") -> list[int]:
    if not value.strip():
        return []
    parts = value.replace(",", "-").split("-")
    if not all(p.strip() for p in parts):
        raise SpecError(f"{option}: expected sizes like 300-100, got {short(value)}")
    if len(parts) > MAX_HIDDEN_LAYERS:
        raise SpecError(f"{option}: at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(parts)}")
    try:
        return [_size(v, option) for v in parts]
    except SpecError as exc:
        raise SpecError(f"{exc.message} (expected sizes like 300-100)") from None


def _build_mlp(shape: InputShape, classes: int, opts: dict[str, str]) -> nn.Module:
    hidden = _ints(opts.pop("hidden", "300-100"))
    return MLP(shape[0] * shape[1] * shape[2], hidden, classes)


def _build_lenet300(shape: InputShape, classes: int, opts: dict[str, str]) -> nn.Module:
    return MLP(shape[0] * shape[1] * shape[2], [300, 100], classes)


def _build_lenet5(shape: InputShape, classes: int, opts: dict[str, str]) -> nn.Module:
    return LeNet5(shape[0], classes, min(shape[1], shape[2]))


def _build_resnet(blocks: int) -> Callable[[InputShape, int, dict[str, str]], nn.Module]:
    def build(shape: InputShape, classes: int, opts: dict[str, str]) -> nn.Module:
        width = _size(opts.pop("width", "16"), "width")
        return ResNet(shape[0], classes, width=width, blocks=blocks, input_size=min(shape[1], shape[2]))
    return build


# name -> (builder, classic input shape)
ARCHS: dict[str, tuple[Callable[[InputShape, int, dict[str, str]], nn.Module], InputShape]] = {
    "mlp": (_build_mlp, (1, 28, 28)),
    "lenet300": (_build_lenet300, (1, 28, 28)),
    "lenet5": (_build_lenet5, (1, 28, 28)),
    "resnet8": (_build_resnet(1), (3, 32, 32)),
    "resnet14": (_build_resnet(2), (3, 32, 32)),
    "resnet20": (_build_resnet(3), (3, 32, 32)),
}


def parse_arch(text: str) -> tuple[str, dict[str, str]]:
    """`mlp:hidden=300-100` -> ("mlp", {"hidden": "300-100"})."""
    name, _, rest = text.partition(":")
    opts: dict[str, str] = {}
    for item in filter(None, rest.split(":") if rest else []):
        for kv in item.split(","):
            key, eq, value = kv.partition("=")
            if not eq:
                raise SpecError(f"arch option {kv!r} should be key=value (e.g. arch:mlp:hidden=300-100)")
            opts[key.strip()] = value.strip()
    return name, opts


def build_arch(text: str, input_shape: InputShape | None = None, num_classes: int | None = None) -> nn.Module:
    name, opts = parse_arch(text)
    if name not in ARCHS:
        close = difflib.get_close_matches(name, ARCHS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(sorted(ARCHS))})"
        raise SpecError(f"unknown architecture {name!r}{hint}")
    builder, classic = ARCHS[name]
    try:
        model = builder(cast(InputShape, tuple(input_shape or classic)), num_classes or 10, opts)   # a list from a record
    except SpecError as exc:
        raise SpecError(f"arch:{clip(text)}: {exc.message}") from None
    if opts:
        raise SpecError(f"unknown option(s) for arch:{name}: {', '.join(opts)}")
    return model
