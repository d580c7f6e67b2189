"""Network modules: recognition backbones, StyleGAN2 and its layers, the latent transformer, the decoder, the attribute estimators."""
