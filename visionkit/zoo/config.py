"""Defaults of the architecture zoo's commands, defined once (plain Python, so ``--help`` imports no TensorFlow).

The conv-cost example is the course's (Andrew Ng, "Network in Network / 1×1 convolutions" and "Inception"): a
28×28×192 volume through a "same" 5×5 convolution with 32 filters, and through a 16-filter 1×1 bottleneck first.
"""

EXAMPLE_INPUT_SHAPE = (28, 28, 192)
EXAMPLE_FILTER_SIZE = 5
EXAMPLE_FILTERS = 32
EXAMPLE_STRIDE = 1
EXAMPLE_PADDING = "same"
EXAMPLE_BOTTLENECK = 16
