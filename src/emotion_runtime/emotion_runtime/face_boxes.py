"""The check every consumer of emotion_msgs/Face applies to a box before using it (tracker_node,
fusion_node), with a stable reason per refusal for the /diagnostics counters.

Why one place: a box with x = inf normalises to a centre at +inf, which the tracker clamps to the
image edge and turns the head to its limit; a NaN or negative size poisons areas and the
"largest face" choice.  Both consumers must refuse the same boxes for the same reasons.
No numpy, no rclpy.
"""
from __future__ import annotations

import math
from typing import Optional

__all__ = ['BOX_REJECT_REASONS', 'OUTSIDE_TOLERANCE', 'face_box_problem']

#: Reasons, in the order they are checked (the diagnostics keys are built from them).
BAD_IMAGE_SIZE = 'bad_image_size'
NON_FINITE_BOX = 'non_finite_box'
EMPTY_BOX = 'empty_box'
OUTSIDE_IMAGE = 'box_outside_image'
NON_FINITE_CONFIDENCE = 'non_finite_confidence'
BOX_REJECT_REASONS = (BAD_IMAGE_SIZE, NON_FINITE_BOX, EMPTY_BOX, OUTSIDE_IMAGE,
                      NON_FINITE_CONFIDENCE)

#: A box may reach this fraction of the image size past each edge (a detector's or tracker's box
#: around a face at the border); farther out it cannot be a face of that image.
OUTSIDE_TOLERANCE = 0.1


def _finite(*values: float) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError, OverflowError):
        return False


def face_box_problem(x: float, y: float, width: float, height: float, image_width: float,
                     image_height: float, confidence: Optional[float] = None) -> Optional[str]:
    """None for a usable box, else the reason (one of BOX_REJECT_REASONS).

    Usable: a finite, positive image size; finite x, y, width, height; width and height > 0;
    the box inside the image, give or take OUTSIDE_TOLERANCE of the image size per side; and,
    when given, a finite confidence.
    """
    if not _finite(image_width, image_height) or image_width <= 0 or image_height <= 0:
        return BAD_IMAGE_SIZE
    if not _finite(x, y, width, height):
        return NON_FINITE_BOX
    if width <= 0 or height <= 0:
        return EMPTY_BOX
    mx, my = OUTSIDE_TOLERANCE * image_width, OUTSIDE_TOLERANCE * image_height
    if x < -mx or y < -my or x + width > image_width + mx or y + height > image_height + my:
        return OUTSIDE_IMAGE
    if confidence is not None and not _finite(confidence):
        return NON_FINITE_CONFIDENCE
    return None
