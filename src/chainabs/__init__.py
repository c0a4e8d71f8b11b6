"""chainabs: tokenised consumer-loan ABS on Ethereum."""

__version__ = "0.1.0"
