"""emdl: deep learning for electron micrographs of radiation damage."""

__version__ = "0.1.0"
