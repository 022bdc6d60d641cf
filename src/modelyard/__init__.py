"""modelyard: a self-hosted model hub that speaks the Hugging Face Hub API."""

__version__ = "0.1.0"
