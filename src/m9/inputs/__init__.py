"""Where a point's model, tokenizer and prompts come from: local checkpoint folders, tokenizer files and prompt
sources, settled and checked in the planning process before anything runs."""
