"""Phone-side programs (absl flags), run from the checkout as modules:
`python3 -m tflite.convert`, `python3 -m tflite.benchmark`, `python3 -m tflite.evaluate`.
Each is a thin front end over the library functions and option definitions
of the `keras-shufflenet` command."""
