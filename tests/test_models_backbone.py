"""Backbones: last-stride geometry, BN neck, unit-length features, loading local ImageNet-style weights."""

from __future__ import annotations

import pytest
import torch
import torchvision

from spcreid.errors import SpcreidError
from spcreid.models import GeneralizedMeanPool, GlobalAvgPool, build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    return build_model("resnet50")


def _layer4_output_shape(model, x):
    seen = {}

    def record(_module, _inputs, output):
        seen["shape"] = tuple(output.shape)

    handle = model.trunk.layer4.register_forward_hook(record)
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return seen["shape"]


def test_resnet50_last_stride_1_keeps_a_16x8_map_and_2048_features(resnet50):
    assert resnet50.feature_dim == 2048
    assert _layer4_output_shape(resnet50, torch.randn(1, 3, 256, 128)) == (1, 2048, 16, 8)


def test_last_stride_2_halves_the_map_as_in_plain_resnet50():
    torch.manual_seed(0)
    model = build_model("resnet50", last_stride=2)
    assert _layer4_output_shape(model, torch.randn(1, 3, 256, 128)) == (1, 2048, 8, 4)


def test_features_are_unit_length_in_train_and_eval_mode(resnet50):
    x = torch.randn(3, 3, 128, 64)
    for train in (True, False):
        resnet50.train(train)
        with torch.no_grad():
            features = resnet50(x)
        assert features.shape == (3, 2048)
        torch.testing.assert_close(features.norm(dim=1), torch.ones(3))


def test_bn_neck_bias_is_frozen_at_zero_while_the_rest_learns():
    torch.manual_seed(0)
    model = build_model("resnet18-small")
    model(torch.randn(8, 3, 64, 32)).sum().backward()
    assert model.neck.bias.requires_grad is False and model.neck.bias.grad is None
    assert torch.count_nonzero(model.neck.bias) == 0
    assert model.neck.weight.grad is not None and model.trunk.conv1.weight.grad is not None


@pytest.mark.parametrize("arch, dim", [("resnet18", 512), ("resnet18-small", 256), ("resnet18-tiny", 128)])
def test_smaller_archs_give_unit_features_of_their_width(arch, dim):
    torch.manual_seed(0)
    model = build_model(arch)
    features = model(torch.randn(4, 3, 64, 32))
    assert model.feature_dim == dim and features.shape == (4, dim)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(4))


def test_random_init_follows_the_callers_seed():
    torch.manual_seed(7)
    first = build_model("resnet18-small").state_dict()
    torch.manual_seed(7)
    second = build_model("resnet18-small").state_dict()
    torch.manual_seed(8)
    third = build_model("resnet18-small").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["trunk.conv1.weight"], third["trunk.conv1.weight"])


def test_pooling_choice_reaches_the_model():
    assert isinstance(build_model("resnet18-small").pool, GlobalAvgPool)
    gem = build_model("resnet18-small", pooling="gem-learnable").pool
    assert isinstance(gem, GeneralizedMeanPool) and isinstance(gem.p, torch.nn.Parameter)


def test_torchvision_resnet50_state_dict_loads_into_the_trunk(tmp_path):
    torch.manual_seed(123)
    reference = torchvision.models.resnet50(weights=None).state_dict()
    weights = tmp_path / "resnet50-imagenet.pth"
    torch.save(reference, weights)

    torch.manual_seed(0)
    model = build_model("resnet50", pretrained=weights)
    loaded = model.trunk.state_dict()
    for key in ("conv1.weight", "layer1.0.bn1.running_mean", "layer4.0.conv2.weight", "layer4.2.bn3.bias"):
        assert torch.equal(loaded[key], reference[key])
    # Stride 1 in layer4 changes no weight shape, only the geometry.
    assert model.trunk.layer4[0].conv2.stride == (1, 1)
    assert torch.equal(model.neck.weight, torch.ones(2048))


def test_checkpoint_without_batchnorm_counters_loads(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    old_style = {k: v for k, v in reference.items() if not k.endswith("num_batches_tracked")}
    weights = tmp_path / "old.pth"
    torch.save({"state_dict": old_style}, weights)
    model = build_model("resnet18", pretrained=weights)
    assert torch.equal(model.trunk.layer3[1].conv2.weight, reference["layer3.1.conv2.weight"])


def test_weights_of_another_arch_are_refused_naming_the_file(tmp_path):
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    with pytest.raises(SpcreidError, match=r"resnet18\.pth do not fit arch 'resnet50'.*shape mismatch"):
        build_model("resnet50", pretrained=weights)


def test_missing_corrupt_and_non_state_dict_files_give_clear_errors(tmp_path):
    with pytest.raises(SpcreidError, match=r"nope\.pth not found"):
        build_model("resnet18-small", pretrained=tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(SpcreidError, match=r"corrupt\.pth cannot be read"):
        build_model("resnet18-small", pretrained=corrupt)
    truncated = tmp_path / "truncated.pth"
    good = tmp_path / "good.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), good)
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(SpcreidError, match=r"truncated\.pth cannot be read"):
        build_model("resnet18", pretrained=truncated)
    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], a_list)
    with pytest.raises(SpcreidError, match=r"list\.pth hold no state dict"):
        build_model("resnet18", pretrained=a_list)


def test_unknown_arch_pooling_or_stride_are_user_errors():
    with pytest.raises(SpcreidError, match="unknown arch 'resnet34'"):
        build_model("resnet34")
    with pytest.raises(SpcreidError, match="unknown pooling 'max'"):
        build_model("resnet18-small", pooling="max")
    with pytest.raises(SpcreidError, match="last_stride"):
        build_model("resnet18-small", last_stride=3)
