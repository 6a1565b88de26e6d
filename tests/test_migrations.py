"""The models and their migrations agree: a model change without its migration fails here, not on deploy."""
from django.core.management import call_command


def test_no_model_change_lacks_its_migration(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits non-zero when one is missing
