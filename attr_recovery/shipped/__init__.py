"""The shipped reference decoder and estimators (weights in attr_recovery/reference_weights/)."""
