"""framilab: data-free knowledge distillation of sound classifiers with FRAMI."""
__version__ = "0.1.0"
