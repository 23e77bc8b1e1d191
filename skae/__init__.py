"""skae: scikit-learn compatible autoencoders on PyTorch."""

from ._autoencoder import AutoencoderTransformer
from ._contractive import ContractiveAE
from ._denoising import DenoisingAE
from ._hashing import SemanticHashing
from ._persistence import load
from ._stacked import StackedAE
from ._variational import VariationalAE

__version__ = "0.1.0"

__all__ = [
    "AutoencoderTransformer",
    "ContractiveAE",
    "DenoisingAE",
    "SemanticHashing",
    "StackedAE",
    "VariationalAE",
    "load",
    "__version__",
]
