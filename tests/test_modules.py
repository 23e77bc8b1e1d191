import pytest
import torch
from numpy.testing import assert_allclose

from skae._modules import ACTIVATIONS, Autoencoder, TiedLinear


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_shapes_and_contract():
    m = Autoencoder(10, 3, hidden_layer_sizes=(7, 5), activation="tanh")
    x = torch.randn(4, 10)
    decoded, code = m(x)
    assert decoded.shape == (4, 10) and code.shape == (4, 3)
    assert torch.equal(m.encode(x), code)
    assert torch.equal(m.decode(code), decoded)  # identity output activation
    assert [layer.weight.shape for layer in m.encoder_layers()] == [
        (7, 10),
        (5, 7),
        (3, 5),
    ]


def test_tied_weights_share_one_parameter():
    m = Autoencoder(10, 3, hidden_layer_sizes=(6,), tied_weights=True)
    untied = Autoencoder(10, 3, hidden_layer_sizes=(6,))
    tied_layers = [layer for layer in m.decoder if isinstance(layer, TiedLinear)]
    assert tied_layers[0].source is m.code
    assert tied_layers[1].source is m.encoder[0]
    # Same storage: the decoder's weight is a view of the encoder's.
    assert tied_layers[0].weight.data_ptr() == m.code.weight.data_ptr()
    # Encoder weights + encoder biases + decoder biases only.
    assert _n_params(m) == (10 * 6 + 6 * 3) + (6 + 3) + (6 + 10)
    assert _n_params(untied) - _n_params(m) == 10 * 6 + 6 * 3
    assert len(m.weights()) == 2
    # One gradient step through both paths updates the single tensor.
    x = torch.randn(5, 10)
    m(x)[0].pow(2).sum().backward()
    assert m.code.weight.grad is not None
    # Conversions (dtype copies for inference) keep the tie.
    m64 = m.to(torch.float64)
    assert m64.decoder[0].source.weight.dtype == torch.float64


def test_normalization_round_trip():
    m = Autoencoder(3, 2, hidden_layer_sizes=())
    m.set_normalization(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0]))
    x = torch.tensor([[3.0, 4.0, 5.0]])
    assert_allclose(m.normalize(x).numpy(), [[1.0, 1.0, 1.0]])
    assert_allclose(m.denormalize(m.normalize(x)).numpy(), x.numpy())


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_table(name):
    m = Autoencoder(4, 2, hidden_layer_sizes=(3,), activation=name, code_activation=name)
    out = m.encode(torch.randn(6, 4))
    if name == "logistic":
        assert bool(((out > 0) & (out < 1)).all())
    if name == "relu":
        assert bool((out >= 0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("offset", [0.0, 2.0, 1e3], ids=["zero-mean", "folded", "not-folded"])
def test_plain_functions_compute_what_the_module_computes(offset, tied, dtype):
    torch.manual_seed(0)
    m = Autoencoder(
        6, 2, hidden_layer_sizes=(5, 4), activation="tanh",
        output_activation="logistic", tied_weights=tied,
    ).to(dtype).eval()
    scale = torch.rand(6, dtype=dtype) + 0.5
    mean = offset * scale * torch.linspace(-1, 1, 6, dtype=dtype)
    m.set_normalization(mean, scale)
    x = mean + scale * torch.randn(50, 6, dtype=dtype)
    encode, decode = m.plain_functions()
    with torch.no_grad():
        expected = m.encode(m.normalize(x))
        got = encode(x)
        z = torch.randn(50, 2, dtype=dtype)
        # The decoder path is op for op the module's.
        assert torch.equal(decode(z), m.denormalize(m.decode(z)))
    if offset > 8:  # |mean| / scale beyond the fold limit: the module's ops exactly
        assert torch.equal(got, expected)
    else:  # normalisation folded into the first layer: equal up to rounding
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(got, expected, rtol=50 * eps, atol=50 * eps)
    # Parameters are shared: in-place updates of later layers show through.
    with torch.no_grad():
        m.code.bias.add_(1.0)
        torch.testing.assert_close(encode(x), m.encode(m.normalize(x)), rtol=1e-5, atol=1e-5)
