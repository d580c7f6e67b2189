"""Model export: frozen GraphDefs, SavedModel, LiteRT, ONNX (the library behind the
``tools/freeze`` command lines)."""
