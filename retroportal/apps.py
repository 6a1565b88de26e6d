from django.apps import AppConfig


class RetroportalConfig(AppConfig):
    name = "retroportal"
    verbose_name = "retroportal accounts"
