"""The shipped reference decoders, estimators and MobileFaceNet (weights in attr_recovery/reference_weights/)."""
