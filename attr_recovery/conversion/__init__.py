"""Reading the original's PyTorch checkpoints and converting them to our Keras models."""
