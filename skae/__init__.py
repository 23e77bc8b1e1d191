"""skae: scikit-learn compatible autoencoders on PyTorch."""

from . import _onnx
from ._autoencoder import AutoencoderTransformer
from ._contractive import ContractiveAE
from ._denoising import DenoisingAE
from ._hashing import SemanticHashing
from ._latent_space_display import LatentSpaceDisplay
from ._loading import load
from ._loss_curve_display import LossCurveDisplay
from ._reconstruction_display import ReconstructionDisplay
from ._stacked import StackedAE
from ._variational import VariationalAE
from ._version import __version__

# ONNX converters for skl2onnx, registered when skl2onnx is (or gets) imported.
_onnx._install()

__all__ = [
    "AutoencoderTransformer",
    "ContractiveAE",
    "DenoisingAE",
    "LatentSpaceDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
    "SemanticHashing",
    "StackedAE",
    "VariationalAE",
    "load",
    "__version__",
]
