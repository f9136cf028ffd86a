"""Reference PyTorch models with seeded random weights and BN statistics."""

import numpy as np
import torch
from pytorchcv.model_provider import get_model as get_pytorchcv_model
from torchvision.models import shufflenetv2

from keras_shufflenet import _imagenet as imagenet

TORCHVISION_V2 = {
    0.5: shufflenetv2.shufflenet_v2_x0_5,
    1.0: shufflenetv2.shufflenet_v2_x1_0,
    1.5: shufflenetv2.shufflenet_v2_x1_5,
    2.0: shufflenetv2.shufflenet_v2_x2_0,
}


def randomized(model, seed):
    """Random weights and BatchNorm statistics, so that every tensor matters."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                uniform(module.weight, 0.5, 1.5)
                uniform(module.bias, -0.3, 0.3)
                uniform(module.running_mean, -0.3, 0.3)
                uniform(module.running_var, 0.5, 2.0)
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                uniform(module.weight, -(3 / fan_in) ** 0.5, (3 / fan_in) ** 0.5)
                if module.bias is not None:
                    uniform(module.bias, -0.1, 0.1)
    return model.eval()


def torchvision_v2(alpha, seed=0):
    return randomized(TORCHVISION_V2[alpha](weights=None), seed)


def pytorchcv_v1(name, seed=0):
    return randomized(get_pytorchcv_model(name, pretrained=False), seed)


def v2_features(model):
    """torchvision's ShuffleNetV2 body, without pooling and classifier."""
    parts = [model.conv1, model.maxpool, model.stage2, model.stage3, model.stage4, model.conv5]
    return torch.nn.Sequential(*parts).eval()


def v1_features(model):
    """pytorchcv's ShuffleNet body, without its final 7x7 pool."""
    return torch.nn.Sequential(*list(model.features.children())[:-1]).eval()


def pixels(batch, height, width, seed=0):
    """Random RGB pixels in [0, 255], NHWC float32."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(batch, height, width, 3)).astype("float32")


def run_torch(module, nhwc_pixels):
    """Runs a reference module on pixels normalised as the references expect."""
    x = (nhwc_pixels / 255.0 - np.array(imagenet.MEAN)) / np.array(imagenet.STD)
    x = torch.from_numpy(x.astype("float32")).permute(0, 3, 1, 2)
    with torch.no_grad():
        y = module(x)
    y = y.numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y
