"""Export of the decoding chain (SavedModel, LiteRT, ONNX)."""
