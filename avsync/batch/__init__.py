"""Many inputs: `avsync check` over folders, manifests, local workers or a Ray cluster."""
