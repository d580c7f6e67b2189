"""Independent reference implementations the tests compare against (TF1 graph, PyTorch modules, forged checkpoints)."""
