"""molting: curate a persona chat dataset, fine-tune a LoRA/QLoRA adapter, gate it with pytest."""

__version__ = "0.1.0"
