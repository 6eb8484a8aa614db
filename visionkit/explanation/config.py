"""Explain defaults, defined once: the API's signatures and the CLI's ``--help`` read them from here (plain Python,
so that ``visionkit explain --help`` imports no TensorFlow)."""

DEFAULT_MODEL = "efficientnet_lite0"
#: weight of the colour map over the photo in an overlay (0: the photo only, 1: the heat only).
DEFAULT_ALPHA = 0.45
DEFAULT_BATCH_SIZE = 16
#: ``models visualize``: how many units of the layer (the most active ones) and how many patches each.
DEFAULT_UNITS = 8
DEFAULT_TOP = 8
#: a patch is the square around a unit's position that holds this share of the unit's input gradient mass
#: (its effective receptive field, Luo et al. 2016).
DEFAULT_ERF_MASS = 0.5
#: side of one patch in the contact sheet, in pixels.
DEFAULT_TILE = 72
#: file name suffix of a saved overlay.
OVERLAY_SUFFIX = "_gradcam.png"
