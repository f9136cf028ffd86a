"""`python -m keras_shufflenet.cli`, as the `keras-shufflenet` command."""

import sys

from keras_shufflenet.cli import main

sys.exit(main())
