"""State badges: each record type's colour map (from its app's ``choices``), drawn with the text colour,
black or white, that contrasts more with the badge (WCAG AA whatever the colour); the text always says
the state, so colour is never the only signal.
"""

from django.utils.html import format_html

from cmdb.choices import CI_STATE_COLOURS, CRITICALITY_COLOURS, ENVIRONMENT_TIER_COLOURS
from deployments.choices import (
    DEPLOYMENT_STATE_COLOURS,
    ELS_STATE_COLOURS,
    INCIDENT_SEVERITY_COLOURS,
    INCIDENT_STATE_COLOURS,
    PROMOTION_STAGE_STATE_COLOURS,
    PROMOTION_STATE_COLOURS,
    STEP_STATE_COLOURS,
    WAVE_STATE_COLOURS,
)
from rdm_site.choices import DELIVERY_STATE_COLOURS
from releases.choices import (
    CHANGE_STATE_COLOURS,
    CHANGE_TYPE_COLOURS,
    DECISION_COLOURS,
    PACKAGE_STATE_COLOURS,
    RELEASE_STATE_COLOURS,
    RELEASE_TYPE_COLOURS,
    REVIEW_STATE_COLOURS,
    RISK_COLOURS,
)

# (model label, field) -> colour map.
COLOURS = {
    ("releases.release", "state"): RELEASE_STATE_COLOURS,
    ("releases.release", "release_type"): RELEASE_TYPE_COLOURS,
    ("releases.releasepackage", "state"): PACKAGE_STATE_COLOURS,
    ("releases.changerecord", "state"): CHANGE_STATE_COLOURS,
    ("releases.changerecord", "change_type"): CHANGE_TYPE_COLOURS,
    ("releases.changerecord", "risk"): RISK_COLOURS,
    ("releases.approval", "decision"): DECISION_COLOURS,
    ("releases.postimplementationreview", "state"): REVIEW_STATE_COLOURS,
    ("cmdb.configurationitem", "state"): CI_STATE_COLOURS,
    ("cmdb.service", "criticality"): CRITICALITY_COLOURS,
    ("cmdb.environment", "tier"): ENVIRONMENT_TIER_COLOURS,
    ("deployments.deployment", "state"): DEPLOYMENT_STATE_COLOURS,
    ("deployments.wave", "state"): WAVE_STATE_COLOURS,
    ("deployments.step", "state"): STEP_STATE_COLOURS,
    ("deployments.incident", "state"): INCIDENT_STATE_COLOURS,
    ("deployments.incident", "severity"): INCIDENT_SEVERITY_COLOURS,
    ("deployments.earlylifesupport", "state"): ELS_STATE_COLOURS,
    ("deployments.promotion", "state"): PROMOTION_STATE_COLOURS,
    ("deployments.promotionstage", "state"): PROMOTION_STAGE_STATE_COLOURS,
    ("rdm_site.webhookdelivery", "state"): DELIVERY_STATE_COLOURS,
}

# The CSS colour names the colour maps use, as sRGB.
RGB = {
    "black": (0, 0, 0),
    "darkcyan": (0, 139, 139),
    "darkgreen": (0, 100, 0),
    "darkorange": (255, 140, 0),
    "darkred": (139, 0, 0),
    "dimgray": (105, 105, 105),
    "firebrick": (178, 34, 34),
    "gray": (128, 128, 128),
    "green": (0, 128, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "red": (255, 0, 0),
    "royalblue": (65, 105, 225),
    "silver": (192, 192, 192),
    "slateblue": (106, 90, 205),
    "slategray": (112, 128, 144),
    "steelblue": (70, 130, 180),
    "teal": (0, 128, 128),
    "yellow": (255, 255, 0),
}


def _luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in RGB[colour])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def text_colour(colour: str) -> str:
    """Black or white, whichever contrasts more with ``colour``."""
    luminance = _luminance(colour)
    return "#000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#fff"


def badge_html(text: str, colour: str = "gray"):
    return format_html(
        '<span class="badge rdm-badge" style="background-color:{};color:{}">{}</span>',
        colour,
        text_colour(colour),
        text,
    )


def field_badge(record, field: str = "state"):
    """A badge for ``record.<field>``, its display text in the colour its app gives that value."""
    value = getattr(record, field)
    colours = COLOURS.get((record._meta.label_lower, field), {})
    return badge_html(getattr(record, f"get_{field}_display")(), colours.get(value, "gray"))
