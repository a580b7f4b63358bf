"""Make the package importable when pytest runs from the source tree (colcon test, plain pytest)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
