"""crossship: automatic shipment notification (自動出荷通知) for online malls."""

__version__ = "0.1.0"
