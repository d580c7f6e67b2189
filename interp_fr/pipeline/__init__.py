"""The main job (``interp-fr-demo``): the whole pipeline on the synthetic world. A leaf:
it imports every other package and none imports it."""
