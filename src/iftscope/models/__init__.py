"""Plain model access: loading (dtype, device, adapters), the scorer, and model identity."""

# the dtype names a recipe or a flag may give (load.DTYPES maps them to torch's), here where the
# recipe check and the CLI read them without importing torch
DTYPE_NAMES = ("float32", "bfloat16", "float16", "auto")
