from django.db import models


class ActorKind(models.TextChoices):
    """Who acted: a signed-in person, a pipeline's API token, or RDM itself (timers, reconcilers)."""

    USER = "user", "user"
    TOKEN = "token", "API token"
    SYSTEM = "system", "system"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "pending"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


DELIVERY_STATE_COLOURS = {
    DeliveryState.PENDING: "yellow",
    DeliveryState.SUCCEEDED: "green",
    DeliveryState.FAILED: "red",
}
