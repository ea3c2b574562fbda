"""Plain model access: loading (dtype, device, adapters), the scorer, and model identity."""
