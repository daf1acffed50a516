"""The input conversion the ops, preprocess, Enhancer and the baselines share (xvertfast.ops._inputs),
and the descriptions of what was given for pixels it and the reprs use (xvertfast._pixels)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

from xvertfast._pixels import describe_array
from xvertfast.ops._inputs import real_from_numpy


@pytest.mark.parametrize("value, why", [
    ([np.zeros((4, 4), np.float32), np.zeros((2, 3), np.float32)], "its items differ in shape"),
    ([[0.1, 0.2], [0.3]], "its items differ in shape"),
    ([torch.zeros(4, 4, requires_grad=True)] * 2, "requires grad"),
])  # fmt: skip
def test_a_sequence_numpy_cannot_make_one_array_of_is_refused_by_name(value, why):
    # NumPy said only "setting an array element with a sequence ... inhomogeneous shape", and
    # torch "Can't call numpy() on Tensor that requires grad", neither naming the argument
    with pytest.raises(TypeError, match=rf"^enhance: pixels must be an image \(\[H, W\] array or tensor\), got a "
                                        rf"list that NumPy cannot make one array of \(.*{why}.*\): give one image "
                                        r"at a time$"):  # fmt: skip
        real_from_numpy(value, "enhance: pixels")


def test_a_sequence_of_equal_images_is_still_one_array():
    images = [np.full((4, 5), 0.25, np.float32), np.full((4, 5), 0.5, np.float32)]
    t = real_from_numpy(images, "enhance: pixels")
    assert t.shape == (2, 4, 5) and t.dtype == torch.float32
    assert torch.equal(t[1], torch.full((4, 5), 0.5))


def test_a_masked_array_with_masked_pixels_is_refused_not_unmasked():
    # np.asarray dropped the mask: wls, preprocess and enhance used the pixels under it as any others
    from xvertfast import wls

    image = np.ma.masked_array(np.full((8, 8), 0.5, np.float32), mask=np.eye(8, dtype=bool))
    with pytest.raises(TypeError, match=r"^wls: image must be .*, got a masked array with 8 masked pixel\(s\), whose "
                                        r"mask would be ignored: fill them first \(array.filled\(value\)\)$"):  # fmt: skip
        wls(image)
    unmasked = np.ma.masked_array(image.data, mask=False)  # nothing masked: the array it holds
    np.testing.assert_array_equal(wls(unmasked), wls(image.data))


def test_a_masked_array_is_refused_in_the_words_of_what_the_op_takes():
    # feature_entropy and gradient_correlation said it "must be an image ([H, W] array or tensor)"
    from xvertfast.ops import feature_entropy, gradient_correlation, select_max_entropy

    mask = np.eye(4, dtype=bool)[None, None].repeat(2, 1)  # (4 pixels of each of 2 channels)
    maps = np.ma.masked_array(np.full((1, 2, 4, 4), 0.5, np.float32), mask=mask)
    for op in (feature_entropy, select_max_entropy):
        with pytest.raises(TypeError, match=rf"^{op.__name__}: x must be feature maps \(\[B, C, H, W\] array or "
                                            r"tensor\), got a masked array with 8 masked"):  # fmt: skip
            op(maps)
    with pytest.raises(TypeError, match=r"^gradient_correlation: a must be images \(\[B, H, W\] or \[B, 1, H, W\] "
                                        r"array or tensor\), got a masked array with 4 masked"):  # fmt: skip
        gradient_correlation(maps[:, 0], maps.data[:, 0])


#: The hints of xvertfast._pixels.shape_hint, as a refusal ends with them.
COLOUR = "a colour image, channels last: give one channel [H, W]; xvertfast.io.read_image gives a colour file's luminance"
SQUEEZE = "one image with axes of length 1: give pixels.squeeze()"
GREY_ALPHA = "a grey image with alpha, channels last: give its grey channel [H, W], pixels[..., 0]"
#: (a notebook's batch was told the shape alone)
STACK = "a stack of 2 images, or one with its channels first: give one [H, W] at a time, pixels[i]"
#: (torchvision's RGB was told to give pixels[i], one at a time: R, G and B enhanced as three images)
RGB_FIRST = ("a stack of 3 images: give one [H, W] at a time, pixels[i]; or a colour image with its channels first: "
             "give one channel [H, W], not each as an image; xvertfast.io.read_image gives a colour file's luminance")
#: (torchvision's batch of RGB, a DataLoader's or one image's unsqueeze(0), was told the shape alone)
RGB_BATCH = ("a batch of 2 colour images with their channels first: give one channel [H, W] of one at a time, "
             "pixels[i, 0]; xvertfast.io.read_image gives a colour file's luminance")
RGB_BATCH_OF_ONE = ("a colour image with its channels first, in a batch of one: give one channel [H, W], pixels[0, 0]; "
                    "xvertfast.io.read_image gives a colour file's luminance")
#: (PIL's or imageio's arrays stacked, np.stack of RGB files, was told the shape alone)
RGB_LAST_BATCH = ("a batch of 2 colour images, channels last: give one channel [H, W] of one at a time, "
                  "pixels[i, ..., 0]; xvertfast.io.read_image gives a colour file's luminance")
RGB_LAST_BATCH_OF_ONE = ("a colour image, channels last, in a batch of one: give one channel [H, W], pixels[0, ..., 0]; "
                         "xvertfast.io.read_image gives a colour file's luminance")
GREY_ALPHA_BATCH = ("a batch of 2 grey images with alpha, channels last: give the grey channel [H, W] of one at a "
                    "time, pixels[i, ..., 0]")
#: (Keras's batch of grey images, [B, H, W, 1], was told the shape alone)
GREY_LAST_BATCH = "a batch of 2 grey images, channels last: give one [H, W] at a time, pixels[i, ..., 0]"


@pytest.mark.parametrize("shape, hint", [((40, 40, 3), COLOUR), ((40, 40, 4), COLOUR), ((40, 40, 2), GREY_ALPHA),
                                         ((1, 40, 40), SQUEEZE), ((40, 40, 1), SQUEEZE), ((1, 1, 40, 40), SQUEEZE),
                                         ((2, 40, 40), STACK), ((3, 40, 40), RGB_FIRST),
                                         ((4, 40, 40), RGB_FIRST.replace("3 images", "4 images")),
                                         ((1, 3, 40, 40), RGB_BATCH_OF_ONE), ((2, 4, 40, 40), RGB_BATCH),
                                         ((2, 3, 40, 4), None), ((2, 40, 40, 3), RGB_LAST_BATCH),
                                         ((2, 40, 40, 4), RGB_LAST_BATCH), ((1, 40, 40, 3), RGB_LAST_BATCH_OF_ONE),
                                         ((2, 40, 40, 2), GREY_ALPHA_BATCH), ((2, 4, 40, 3), None),
                                         ((2, 40, 40, 1), GREY_LAST_BATCH), ((1, 40, 40, 1), SQUEEZE),
                                         ((2, 4, 40, 1), None)])
def test_one_image_in_another_layout_is_told_how_to_give_it(tmp_path, shape, hint):
    """The functions that take one [H, W] image refused an RGB array (PIL, imageio), a network's
    [1, 1, H, W] or a stack of images with "got shape (40, 40, 3)" alone, where preprocess and wls said
    what it looked like."""
    from xvertfast import find_spine
    from xvertfast.eval.baselines import clahe
    from xvertfast.infer import Enhancer
    from xvertfast.io import write_image
    from xvertfast.model import XVertNet, XVertNetStage

    pixels = np.random.default_rng(0).random(shape).astype(np.float32)
    enhance = Enhancer(XVertNet([XVertNetStage(4, 2)]), device="cpu").enhance
    out = tmp_path / "out.png"
    said = f"got shape {shape}" + (f" ({hint})" if hint else "")
    for who, call, given in [("enhance", enhance, pixels), ("enhance", enhance, torch.from_numpy(pixels)),
                             ("find_spine", find_spine, pixels), ("clahe", clahe, pixels),
                             (str(out), lambda p: write_image(out, p), pixels)]:  # fmt: skip
        with pytest.raises(ValueError, match=f"^{re.escape(who)}: pixels must be .*{re.escape(said)}$"):
            call(given)
    assert not out.exists()


@pytest.mark.parametrize("shape, hint", [((48, 48, 5), ""), ((40, 3, 3), ""), ((40, 4, 2), ""),
                                         ((300, 200, 150), ""), ((1000, 64, 64), " (a stack of 1000 images, "),
                                         ((40, 48, 48), " (a stack of 40 images, "), ((3, 4, 3), " (a stack of 3 ")])
def test_no_stack_hint_where_the_last_axis_reads_as_channels(shape, hint):
    """(512, 512, 5) was told "a stack of 512 images": pixels[i] gives a 512 x 5 strip. A last axis
    shorter than the others (5 or more), or of 2 to 4 beside a width of 4 or less, reads as
    channels last as well: no hint rather than a wrong one."""
    from xvertfast._pixels import shape_hint

    assert shape_hint(shape).startswith(hint) and bool(shape_hint(shape)) == bool(hint)


def test_find_spine_of_many_channels_last_is_told_the_shape_alone():
    from xvertfast import find_spine

    with pytest.raises(ValueError, match=r"^find_spine: pixels must be \[H, W\] with H, W >= 1, got shape "
                                         r"\(48, 48, 5\)$"):  # fmt: skip
        find_spine(np.zeros((48, 48, 5), np.float32))


@pytest.mark.parametrize("value, said", [
    (np.array([[0, 3], [4095, 7]], np.uint16), "uint16 2x2 in [0, 4095]"),
    (np.array([[0.5, np.nan], [np.inf, 0.25]], np.float64), "float64 2x2 in [0.25, inf] and NaN"),
    (np.full((2, 3), np.nan, np.float32), "float32 2x3 all NaN"),
    (np.zeros((0, 5), np.float32), "float32 0x5 empty"),
    (np.array([[True, False]]), "bool 1x2 in [0, 1]"),
    (torch.tensor([[1.0, 2.5]]), "float32 1x2 in [1, 2.5]"),
    (object(), "object 0-dim"),
    (torch.zeros((2, 3), device="meta"), "float32 2x3 on meta"),  # (as a CUDA one: NumPy cannot read it)
    (torch.zeros((2, 3), dtype=torch.bfloat16), "bfloat16 2x3 on cpu"),  # (they read "Tensor" alone)
    (np.array([[-np.inf, 0.5], [np.nan, 1.0]], np.float32), "float32 2x2 in [-inf, 1] and NaN"),
])  # fmt: skip
def test_an_array_in_a_repr_is_its_dtype_shape_and_range(value, said):
    # (the reprs of Radiograph, Spine and EnhanceResult show their arrays so; a NaN or an empty
    # image must not make the repr fail or warn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert describe_array(value) == said


def test_a_radiograph_or_a_path_given_to_an_op_is_told_how_to_get_its_pixels():
    # wls said "got Radiograph" where preprocess and find_spine said "give its .pixels"
    from xvertfast.io import Radiograph
    from xvertfast.ops import gradient_correlation, wls

    rad = Radiograph(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8), 8, "MONOCHROME2", "png", "a.png")
    with pytest.raises(TypeError, match=r"^wls: image must be a NumPy array or a torch tensor, got a Radiograph: give "
                                        r"its \.pixels$"):  # fmt: skip
        wls(rad)
    with pytest.raises(TypeError, match=r"^gradient_correlation: a must be .*, got the path 'a\.png': read it with "
                                        r"xvertfast\.io\.read_image\(path\)\.pixels$"):  # fmt: skip
        gradient_correlation("a.png", np.zeros((1, 4, 4), np.float32))
    # a NumPy number read "got float64", as a dtype would; the baselines said "got Radiograph" alone
    with pytest.raises(TypeError, match=r"^gradient_correlation: a must be a NumPy array or a torch tensor, got a NumPy "
                                        r"float64 scalar$"):  # fmt: skip
        gradient_correlation(np.float64(1), np.zeros((1, 4, 4), np.float32))
    from xvertfast.eval.baselines import clahe

    with pytest.raises(TypeError, match=r"^clahe: pixels must be an image .*, got a Radiograph: give its \.pixels$"):
        clahe(rad)
    with pytest.raises(TypeError, match=r"^clahe: pixels must be an image .*, got the path 'a\.png': read it with "
                                        r"xvertfast\.io\.read_image\(path\)\.pixels$"):  # fmt: skip
        clahe("a.png")
