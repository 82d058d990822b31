import torch

from mdsgap.features import ncl


def test_rep_relu_forward_is_relu_backward_is_gelu_gradient():
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    y = ncl.rep_relu(x)
    assert torch.equal(y, torch.relu(x.detach()))
    y.sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    torch.nn.functional.gelu(x2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-6)
    assert (x.grad[x < 0] != 0).any()  # switched-off units still learn


def test_features_are_non_negative_and_training_aligns_pairs():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(600, 8, generator=g)
    x = z @ torch.randn(8, 16, generator=g) + 2.0          # images
    y = z @ torch.randn(8, 16, generator=g) - 2.0          # texts: same content, other place
    head, curve = ncl.train_ncl(x, y, ncl.NCLConfig(n_features=32, steps=200, batch_size=128, lr=3e-3), progress=False)
    fx, fy = head(x), head(y)
    assert (fx >= 0).all() and (fy >= 0).all()
    assert curve.loss.iloc[-1] < curve.loss.iloc[0]
    sim = torch.nn.functional.normalize(fx, dim=-1) @ torch.nn.functional.normalize(fy, dim=-1).T
    assert (sim.argmax(1) == torch.arange(600)).float().mean() > 0.2  # far above chance 1/600
