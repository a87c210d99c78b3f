"""predprey: fast multi-agent predator-prey training (MADDPG, MATD3)."""

__version__ = "0.1.0"
