"""The shipped reference decoders and estimators (weights in attr_recovery/reference_weights/; the shipped MobileFaceNet is read by attr_recovery.readers.reference_recognisers)."""
