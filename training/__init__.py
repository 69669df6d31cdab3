"""Training harness: fine-tunes ResNet-50 backbones on the harmonized subsets (filled in by the training issue)."""
