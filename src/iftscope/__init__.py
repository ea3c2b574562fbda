"""iftscope: does instruction fine-tuning teach knowledge, or only self-align the model?"""

__version__ = "0.1.0"
