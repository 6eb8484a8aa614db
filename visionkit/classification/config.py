"""Classification defaults, defined once: the API's signature and the CLI's ``--help`` read them from here."""

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_TOP_K = 5
DEFAULT_BATCH_SIZE = 32
