"""mmohem.CPUAmpOptimWrapper: lookup from mmdet and mmseg configs, the
bfloat16 autocast of its forward context, and an update step."""
import pytest
import torch
from mmdet.registry import OPTIM_WRAPPERS as MMDET_OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from torch import nn

from mmohem.optim import CPUAmpOptimWrapper


def _build(scope: str, model: nn.Module) -> OptimWrapper:
    """Build the wrapper as mmengine's Runner does, from a config's dict."""
    cfg = dict(
        type='mmohem.CPUAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    with DefaultScope.overwrite_default_scope(scope):
        return build_optim_wrapper(model, cfg)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_resolves_from_both_scopes_leaving_upstream_names(scope):
    wrapper = _build(scope, nn.Linear(2, 2))
    assert type(wrapper) is CPUAmpOptimWrapper
    assert MMDET_OPTIM_WRAPPERS.get('OptimWrapper') is OptimWrapper
    assert MMSEG_OPTIM_WRAPPERS.get('OptimWrapper') is OptimWrapper


def test_forward_context_autocasts_to_bfloat16_on_cpu():
    model = nn.Linear(4, 3)
    wrapper = _build('mmdet', model)
    inputs = torch.randn(5, 4)
    with wrapper.optim_context(model):
        assert model(inputs).dtype == torch.bfloat16
    assert model(inputs).dtype == torch.float32


def test_update_step_trains_float32_parameters():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    wrapper = _build('mmseg', model)
    inputs, target = torch.randn(16, 4), torch.randn(16, 1)
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        loss = (model(inputs).float() - target).pow(2).mean()
    wrapper.update_params(loss)
    assert model.weight.dtype == torch.float32
    assert torch.isfinite(model.weight).all()
    assert not torch.equal(model.weight, before)


def test_parameters_off_the_cpu_are_refused():
    """A CUDA model would silently train in float32 under a CPU autocast;
    the meta device stands in for CUDA here."""
    model = nn.Linear(4, 3, device='meta')
    with pytest.raises(
            ValueError,
            match=r"autocasts on the CPU only.*on "
            r"meta.*type='AmpOptimWrapper'"):
        _build('mmdet', model)
