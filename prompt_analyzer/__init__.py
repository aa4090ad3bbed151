"""prompt-analyzer: ask four AI assistants every tracked prompt; store answers, cost and sources."""

__version__ = "0.1.0"
