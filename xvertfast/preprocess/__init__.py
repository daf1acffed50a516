"""The XVertNet preprocessing (Eq. 1-6): the network's inputs X_p and Y from a radiograph."""

from xvertfast.preprocess.inputs import E_FLOOR, NORMALISE_PERCENTILES, Preprocessed, preprocess

__all__ = ["E_FLOOR", "NORMALISE_PERCENTILES", "Preprocessed", "preprocess"]
