import pytest
import torch

from mdsgap import gap
from mdsgap.gap import cones


def test_cone_narrows_with_depth_under_relu():
    z = torch.randn(400, 32, generator=torch.Generator().manual_seed(0))
    shallow = cones.mlp_cone(z, 64, 1, nonlinear=True)
    deep = cones.mlp_cone(z, 64, 8, nonlinear=True)
    assert gap.cone(z) < 0.1 and deep > shallow and deep > 0.5
    assert abs(cones.mlp_cone(z, 64, 8, nonlinear=False)) < 0.1  # a linear map keeps the centred inputs' cone


def test_random_inits_give_distinct_cones():
    z = torch.randn(300, 32, generator=torch.Generator().manual_seed(0))
    outs = [cones.random_mlp(32, 64, 6, seed=s)(z).detach() for s in range(4)]
    sim = cones.cone_directions(outs)
    assert torch.allclose(sim.diagonal(), torch.ones(4, dtype=sim.dtype))
    off = sim[~torch.eye(4, dtype=torch.bool)]
    assert off.abs().max() < min(gap.cone(o) for o in outs)


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        cones.random_mlp(4, 4, 0)
