"""Training stages (vision, vocal, fusion, end2end), each a ``engine.Stage``."""
