"""Distillation: turn gold traces into a small local model served by llama.cpp.

The submodules are imported on demand, because training pulls in torch and transformers
(the ``goldiff[train]`` extra) while serving must not. ``tokenizer`` trains the byte-level
BPE and maps it to GGUF metadata; ``gguf_export`` writes full models and LoRA adapters;
``quantize`` and ``parity`` shrink an export and check it against torch.
"""
