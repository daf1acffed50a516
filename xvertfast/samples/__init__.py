"""A small redistributable radiograph for the quickstart and examples (see NOTICE.md)."""

import os

#: Fuji CR chest PA, 440 x 440, 10-bit MONOCHROME1 DICOM (GDCM/Barre public sample).
SAMPLE_DICOM = os.path.join(os.path.dirname(__file__), "cr_chest_pa_mono1.dcm")

__all__ = ["SAMPLE_DICOM"]
