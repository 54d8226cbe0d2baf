"""Model inversion: generators, BN-statistics hooks, loss terms, the pool and one synthesizer per method."""
from .generator import Generator
from .hooks import BNStatistics, NoBatchNormWarning
from .methods import METHODS, make_synthesizer
from .pool import Pool, PoolError
from .synthesizer import GeneratorSynthesizer, InputSynthesizer, SynthConfig, Synthesizer

__all__ = ["BNStatistics", "Generator", "GeneratorSynthesizer", "InputSynthesizer", "METHODS", "NoBatchNormWarning",
           "Pool", "PoolError", "SynthConfig", "Synthesizer", "make_synthesizer"]
