"""skae: scikit-learn compatible autoencoders on PyTorch."""

from ._autoencoder import AutoencoderTransformer
from ._contractive import ContractiveAE
from ._denoising import DenoisingAE
from ._loading import load
from ._stacked import StackedAE
from ._variational import VariationalAE
from ._version import __version__

__all__ = [
    "AutoencoderTransformer",
    "ContractiveAE",
    "DenoisingAE",
    "StackedAE",
    "VariationalAE",
    "load",
    "__version__",
]
