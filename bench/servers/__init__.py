"""Real servers that countbench starts, uses and stops itself: Redis and the central service."""
