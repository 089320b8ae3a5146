"""The sync model: mouth crops + log-mel -> a score per candidate offset.

- `spec`: the fixed shapes and time grid that training and inference share.
- `inputs`: numpy preprocessing (one function for both, so they cannot diverge).
- `net`: the torch network (training, export); needs torch.
- `infer`: the onnxruntime scorer `check` and `monitor` use; needs no torch.
"""
