"""The JEPA world model: encoder, predictor, regularisers, and the ``WorldModel`` that ties them.

from reverie.models import WorldModel, WorldModelConfig
"""

from reverie.models.encoder import Encoder, EncoderConfig
from reverie.models.predictor import Predictor, PredictorConfig
from reverie.models.sigreg import SIGReg, VICReg, collapse_problems, embedding_health
from reverie.models.world_model import WorldModel, WorldModelConfig

__all__ = [
    "Encoder",
    "EncoderConfig",
    "Predictor",
    "PredictorConfig",
    "SIGReg",
    "VICReg",
    "WorldModel",
    "WorldModelConfig",
    "collapse_problems",
    "embedding_health",
]
