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
