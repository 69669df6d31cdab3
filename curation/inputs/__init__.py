"""The pipeline's inputs as params name them: label readers, image chips and the facts read from them."""
