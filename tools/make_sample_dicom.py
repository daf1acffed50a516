"""Rebuilds the bundled quickstart sample, ``xvertfast/samples/cr_chest_pa_mono1.dcm``.

The source is the GDCM/Barré public DICOM test image CR-MONO1-10-chest (Fuji CR, 1993,
anonymised), stored in shared/data/cxr-dev as a 16-bit PNG of its unchanged 10-bit values.
This puts the pixels back into a DICOM file with the tags that matter for reading it right:
MONOCHROME1 (low value = bright), BitsStored 10, the original window. Run from the repo root:

    python tools/make_sample_dicom.py ../shared/data/cxr-dev/gdcm-barre_cr-chest-pa_10bit_mono1.png
"""

import sys

import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
OUT = "xvertfast/samples/cr_chest_pa_mono1.dcm"


def main(src: str, out: str = OUT) -> None:
    values = np.asarray(Image.open(src)).astype(np.uint16)
    if values.max() >= 1 << 10:
        raise SystemExit(f"{src}: expected 10-bit values, found max {values.max()}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["xvertfast-sample", src])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(out, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["xvertfast-sample-study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["xvertfast-sample-series"])
    ds.Modality = "CR"
    ds.PatientName = "Anonymous"
    ds.PatientID = "GDCM-CR-MONO1-10-chest"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.ImageComments = "GDCM/Barre public DICOM sample CR-MONO1-10-chest (Fuji CR 9000), re-encoded for xvertfast"
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 10, 9
    ds.PixelRepresentation = 0
    ds.WindowCenter, ds.WindowWidth = 550, 1024
    ds.PixelData = np.ascontiguousarray(values).tobytes()
    ds.save_as(out, enforce_file_format=True)
    print(f"wrote {out}: {values.shape[1]}x{values.shape[0]}, values {values.min()}..{values.max()}")


if __name__ == "__main__":
    main(*sys.argv[1:])
