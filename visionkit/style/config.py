"""Style-transfer defaults, defined once: the API's signature and the CLI's ``--help`` read them from here (plain
Python, so that ``visionkit stylize --help`` imports no TensorFlow)."""

DEFAULT_SIZE = 384
DEFAULT_STEPS = 150
DEFAULT_LR = 4.0
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 1e-2
DEFAULT_TV_WEIGHT = 0.5
#: the course's layers (VGG19 names that VGG16 has too): content block5_conv2, style block1_conv1 … block5_conv1.
DEFAULT_CONTENT_LAYER = "block5_conv2"
DEFAULT_STYLE_LAYERS = "block1_conv1:0.2,block2_conv1:0.2,block3_conv1:0.2,block4_conv1:0.2,block5_conv1:0.2"
DEFAULT_INIT = "content"
INITS = ("content", "noise", "content+noise")
DEFAULT_OPTIMIZER = "adam"
OPTIMIZERS = ("adam", "lbfgs")
DEFAULT_BACKBONE = "auto"
DEFAULT_SEED = 0
#: uniform noise added by init "content+noise", in pixel units.
NOISE_AMPLITUDE = 20.0
#: VGG's fifth block sees the image at 1/16 scale: refuse images whose short side would be smaller.
MIN_SIDE = 32
#: a style image stretched to MIN_SIDE may not get more than this many times the content's pixels.
MAX_STYLE_AREA_RATIO = 4.0
BACKBONES = ("auto", "vgg19_imagenet", "vgg16_hed")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # what the result can be written as
