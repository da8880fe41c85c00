"""How a record is shown outside: each app's API registers the serializer of its records here, and webhooks
send the fresh object exactly as the API's detail endpoint shows it.
"""

from django.apps import apps

_SERIALIZERS: dict[str, type] = {}


def representation_register(model, serializer_class) -> None:
    """Called by each app's API module: ``model``'s records are shown with ``serializer_class``."""
    _SERIALIZERS[model._meta.label_lower] = serializer_class


def representation_of(object_type: str, object_id: str) -> dict | None:
    """The record as the API shows it now, or None when it is gone or has no API representation."""
    serializer_class = _SERIALIZERS.get(object_type)
    if serializer_class is None:
        return None
    model = apps.get_model(object_type)
    instance = model._default_manager.filter(pk=object_id).first()
    if instance is None:
        return None
    return serializer_class(instance, context={"request": None}).data
